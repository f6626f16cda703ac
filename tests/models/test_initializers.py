"""Tests of IBPNormal (Shi et al. 2021's IBP initialization), in ibp_cnn."""

import math

import keras
import numpy as np
import pytest

import keras_adv
from keras_adv.certification import interval_bounds
from keras_adv.models import IBPNormal
from keras_adv.models import ibp_cnn


def test_std_is_sqrt_2pi_over_fan_in_and_abs_sums_are_two():
    w = np.asarray(IBPNormal(seed=0)((4, 4, 32, 512)))  # fan_in 512
    std = math.sqrt(2 * math.pi) / 512
    assert abs(w.std() / std - 1) < 0.01
    assert abs(w.mean()) < 0.01 * std
    # The point of the scale: E[sum_i |w_i|] = fan_in * std * sqrt(2/pi) = 2.
    sums = np.abs(w).reshape(512, 512).sum(axis=0)
    assert abs(sums.mean() - 2.0) < 0.02


def test_seeded_calls_repeat_unseeded_ones_differ():
    a, b = IBPNormal(seed=3)((50, 20)), IBPNormal(seed=3)((50, 20))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c, d = IBPNormal()((50, 20)), IBPNormal()((50, 20))
    assert not np.array_equal(np.asarray(c), np.asarray(d))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`shape`"):
        IBPNormal(seed=0)((10,))
    with pytest.raises((TypeError, ValueError), match="`seed`"):
        IBPNormal(seed=-1)
    with pytest.raises(ValueError, match="`initializer`"):
        ibp_cnn("small", initializer="glorot")


def test_a_model_with_it_saves_and_loads_in_safe_mode(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4, kernel_initializer=IBPNormal(7)),
        ]
    )
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    init = loaded.layers[0].kernel_initializer
    assert isinstance(init, IBPNormal) and init.seed == 7
    np.testing.assert_array_equal(
        loaded.get_weights()[0], model.get_weights()[0]
    )


def _initializers(model):
    return [
        layer.kernel_initializer
        for layer in model.layers
        if hasattr(layer, "kernel_initializer")
    ]


def test_ibp_cnn_initializes_hidden_layers_ibp_and_logits_lecun():
    inits = _initializers(ibp_cnn("medium"))
    assert len(inits) == 7  # 4 convolutions, 2 hidden dense, logits
    assert all(isinstance(i, IBPNormal) for i in inits[:-1])
    assert isinstance(inits[-1], keras.initializers.LecunNormal)
    lecun = _initializers(ibp_cnn("medium", initializer="lecun"))
    assert all(isinstance(i, keras.initializers.LecunNormal) for i in lecun)


@pytest.mark.parametrize("size", ["medium", "large"])
def test_interval_bounds_stay_narrow_at_initialization(size):
    """What it is for: bounds that do not explode with depth."""
    x = np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype("float32")
    widths = {}
    for name in ("ibp", "lecun"):
        model = ibp_cnn(size, initializer=name)
        lower, upper = interval_bounds(model, x, 0.01)
        widths[name] = float(np.mean(np.asarray(upper) - np.asarray(lower)))
    # Measured (mean logit interval width at eps 0.01): medium 0.42 from
    # IBPNormal against 5.3e4 from LeCun-normal, large 0.18 against 3.1e5.
    assert widths["ibp"] < 1.0
    assert widths["lecun"] > 1000 * widths["ibp"]


def test_exported_from_models():
    assert keras_adv.models.IBPNormal is IBPNormal
