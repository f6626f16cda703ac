"""RandomLpNoise: in the ball, identity at inference, seeded, saveable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.layers import RandomLpNoise


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("distribution", ["uniform", "gaussian"])
def test_noise_stays_in_the_ball_and_only_in_training(norm, distribution):
    x = np.full((64, 5, 5, 1), 0.5, "float32")
    layer = RandomLpNoise(0.2, norm=norm, distribution=distribution, seed=1)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    noisy = np.asarray(layer(x, training=True)) - x
    flat = noisy.reshape(64, -1)
    norms = (
        np.abs(flat).max(1) if norm == "linf" else np.linalg.norm(flat, axis=1)
    )
    assert norms.max() <= 0.2 + 1e-5
    assert norms.mean() > 0.05  # noise is there
    if norm == "linf" and distribution == "uniform":
        # Uniform in the cube: coordinates spread over [-eps, eps].
        assert flat.min() < -0.18 and flat.max() > 0.18
        assert abs(flat.mean()) < 0.01


def test_value_range_clip_and_eps_zero():
    x = np.zeros((8, 3), "float32")
    layer = RandomLpNoise(0.5, value_range=(0.0, 1.0), seed=0)
    assert np.asarray(layer(x, training=True)).min() >= 0.0
    zero = RandomLpNoise(0.0)
    np.testing.assert_array_equal(np.asarray(zero(x, training=True)), x)


def test_seeded_layers_repeat():
    x = np.full((4, 3), 0.5, "float32")
    a = np.asarray(RandomLpNoise(0.1, seed=3)(x, training=True))
    b = np.asarray(RandomLpNoise(0.1, seed=3)(x, training=True))
    np.testing.assert_array_equal(a, b)


def test_in_a_model_fit_and_keras_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            RandomLpNoise(0.1, norm="l2", distribution="gaussian", seed=0),
            keras.layers.Dense(2),
        ]
    )
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).uniform(size=(16, 3)).astype("float32")
    model.fit(x, np.zeros((16, 2)), epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert loaded.layers[0].get_config()["distribution"] == "gaussian"


def test_errors():
    with pytest.raises(ValueError, match="eps"):
        RandomLpNoise(-0.1)
    with pytest.raises(ValueError, match="distribution"):
        RandomLpNoise(0.1, distribution="laplace")
    with pytest.raises(ValueError, match="norm"):
        RandomLpNoise(0.1, norm=np.inf)


def test_inputs_outside_the_value_range_fail_where_noise_is_applied():
    # Pixels in 0..255 clipped into (0, 1) would be replaced, not
    # perturbed: the layer refuses them, naming its inputs.
    x = np.random.default_rng(0).uniform(size=(4, 3)).astype("float32")
    layer = RandomLpNoise(0.1, value_range=(0.0, 1.0), seed=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`inputs`"):
        layer(x * 255, training=True)
    # At inference the layer is the identity: nothing is clipped.
    np.testing.assert_array_equal(np.asarray(layer(x * 255)), x * 255)
    # In the units of the data, the same noise works.
    wide = RandomLpNoise(25.5, value_range=(0.0, 255.0), seed=0)
    noisy = np.asarray(wide(x * 255, training=True))
    assert np.abs(noisy - x * 255).max() <= 25.5 + 1e-3
    # Inside a traced pipeline (tf.data) too.
    ds = tf.data.Dataset.from_tensor_slices(x * 255).batch(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="value_range"):
        list(ds.map(lambda b: layer(b, training=True)))
