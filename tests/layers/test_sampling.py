"""GaussianSampling: exact with given noise, clamped, seeded, saveable."""

import re

import keras
import numpy as np
import pytest

from keras_adv.layers import GaussianSampling


def test_given_noise_is_exact_reparameterisation():
    layer = GaussianSampling()
    mean = np.float32([[1.0, -2.0]])
    log_var = np.float32([[np.log(4.0), np.log(0.25)]])
    noise = np.float32([[1.0, 2.0]])
    out = np.asarray(layer([mean, log_var], noise=noise))
    np.testing.assert_allclose(out, [[1.0 + 2.0, -2.0 + 0.5 * 2.0]], 1e-6)


def test_log_variance_is_clamped_to_the_stated_range():
    layer = GaussianSampling(log_var_range=(-2.0, 2.0))
    mean = np.zeros((1, 2), "float32")
    log_var = np.float32([[50.0, -50.0]])
    out = np.asarray(layer([mean, log_var], noise=np.ones((1, 2), "float32")))
    np.testing.assert_allclose(out, [[np.exp(1.0), np.exp(-1.0)]], 1e-6)
    assert np.all(np.isfinite(out))


def test_draws_have_the_requested_moments_and_repeat_with_a_seed():
    mean = np.full((20000, 1), 3.0, "float32")
    log_var = np.full((20000, 1), np.log(4.0), "float32")
    a = np.asarray(GaussianSampling(seed=1)([mean, log_var]))
    b = np.asarray(GaussianSampling(seed=1)([mean, log_var]))
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 3.0) < 0.05
    assert abs(a.std() - 2.0) < 0.05


def test_invalid_arguments():
    with pytest.raises(ValueError, match="log_var_range"):
        GaussianSampling(log_var_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="seed"):
        GaussianSampling(seed=-1)
    with pytest.raises(ValueError, match="inputs"):
        GaussianSampling()(np.zeros((1, 2), "float32"))


def test_in_a_functional_model_round_trip(tmp_path):
    mean = keras.Input((3,))
    log_var = keras.Input((3,))
    out = GaussianSampling(log_var_range=(-4.0, 4.0), seed=2)([mean, log_var])
    model = keras.Model([mean, log_var], out)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.layers[-1]
    assert layer.get_config()["log_var_range"] == [-4.0, 4.0]
    assert layer.seed == 2


@pytest.mark.parametrize(
    "log_var_shape", [(2, 4), (2, 1), (3,)], ids=["wider", "broadcast", "rank"]
)
def test_mean_and_log_var_of_other_shapes_name_both(log_var_shape):
    # A broadcast would draw the wrong shape; a mismatch would fail deep
    # in an op ("Incompatible shapes").
    layer = GaussianSampling(seed=0)
    mean = np.zeros((2, 3), "float32")
    log_var = np.zeros(log_var_shape, "float32")
    expected = f"mean of shape (2, 3) and log_var of shape {log_var_shape}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        layer([mean, log_var])
    with pytest.raises(ValueError, match=r"noise of shape \(2, 4\)"):
        layer([mean, mean], noise=np.ones((2, 4), "float32"))


def test_symbolic_shapes_are_checked_when_the_model_is_built():
    with pytest.raises(ValueError, match=r"\(None, 3\).*\(None, 4\)"):
        GaussianSampling()([keras.Input((3,)), keras.Input((4,))])
