"""CVAEAugmentation: members of the set in training, identity otherwise."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.layers import CVAEAugmentation
from keras_adv.testing import shift_cvae

X = np.full((64, 4), 0.5, "float32")


def test_training_draws_members_within_the_radius():
    layer = CVAEAugmentation(shift_cvae((4,), 0.1), radius=1.0, seed=0)
    np.testing.assert_array_equal(np.asarray(layer(X)), X)
    out = np.asarray(layer(X, training=True))
    # Members are x + 0.1 u with ||u|| <= 1.
    norms = np.linalg.norm(out - X, axis=1)
    assert norms.max() <= 0.1 + 1e-5
    assert norms.min() > 0.0


def test_unbounded_draws_follow_the_prior_and_rate_keeps_inputs():
    layer = CVAEAugmentation(shift_cvae((4,), 0.1), seed=1)
    out = np.asarray(layer(np.repeat(X, 50, 0), training=True))
    assert abs((out - 0.5).std() - 0.1) < 0.01
    half = CVAEAugmentation(shift_cvae((4,), 0.1), rate=0.5, seed=2)
    out = np.asarray(half(np.repeat(X, 50, 0), training=True))
    changed = np.any(out != 0.5, axis=1).mean()
    assert 0.4 < changed < 0.6
    zero = CVAEAugmentation(shift_cvae((4,), 0.1), rate=0.0)
    np.testing.assert_array_equal(np.asarray(zero(X, training=True)), X)


def test_in_fit_the_cvae_is_frozen_and_the_model_round_trips(tmp_path):
    cvae = shift_cvae((4,), 0.1)
    before = [w.copy() for w in cvae.get_weights()]
    model = keras.Sequential(
        [
            keras.Input((4,)),
            CVAEAugmentation(cvae, radius=2.0, seed=0),
            keras.layers.Dense(2),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
    logs = model.fit(X, np.zeros(64), epochs=2, verbose=0).history
    assert sorted(logs) == ["loss"]  # no CVAE trackers in the logs
    assert logs["loss"][0] > 0.0
    for a, b in zip(before, cvae.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(model.trainable_weights) == 2
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(X), model(X), atol=1e-6)
    assert loaded.layers[0].get_config()["radius"] == 2.0


def test_invalid_arguments():
    cvae = shift_cvae((4,))
    with pytest.raises(TypeError, match="cvae"):
        CVAEAugmentation("cvae")
    with pytest.raises(ValueError, match="rate"):
        CVAEAugmentation(cvae, rate=1.5)
    with pytest.raises(ValueError, match="radius"):
        CVAEAugmentation(cvae, radius=0.0)


def test_inputs_outside_the_value_range_fail_in_training():
    # Members are clipped to value_range: inputs in 0..255 would all be
    # replaced by clipped values.
    layer = CVAEAugmentation(shift_cvae((4,), 0.1), seed=0)
    np.testing.assert_array_equal(np.asarray(layer(X * 255)), X * 255)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`inputs`"):
        layer(X * 255, training=True)
