"""Tests of the Fréchet distance (class coverage: test_coverage.py)."""

import keras
import numpy as np
import pytest

from keras_adv.metrics import ClassifierFrechetDistance
from keras_adv.metrics import class_coverage
from keras_adv.metrics import frechet_distance
from keras_adv.metrics._frechet import feature_extractor
from keras_adv.metrics._frechet import feature_statistics
from keras_adv.metrics._frechet import frechet_distance_from_statistics


def test_closed_form_diagonal_gaussians():
    # d^2 = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2 for diagonal S.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0.0
    value = frechet_distance_from_statistics(mu1, np.diag(a), mu2, np.diag(b))
    np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_closed_form_commuting_full_covariances():
    # S2 = R S1 R^T with R a rotation is not diagonal; for S1 = I,
    # tr sqrt(S1 S2) = tr sqrt(S2) = sum sqrt(eig(S2)).
    rot = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    s2 = rot @ np.diag([4.0, 0.25]) @ rot.T
    expected = 2.0 + 4.25 - 2.0 * (2.0 + 0.5)
    value = frechet_distance_from_statistics(
        np.zeros(2), np.eye(2), np.zeros(2), s2
    )
    np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_symmetric_and_zero_on_itself():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 4))
    b = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4)) + 1.0
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(
        frechet_distance(a, b), frechet_distance(b, a), rtol=1e-8
    )
    # The sample statistics are those of numpy.
    mu, sigma = feature_statistics(b)
    np.testing.assert_allclose(mu, b.mean(0))
    np.testing.assert_allclose(sigma, np.cov(b.T))


def test_singular_covariance_is_finite():
    a = np.zeros((10, 3))
    a[:, 0] = np.arange(10)  # rank-1 covariance
    b = a + 2.0
    assert frechet_distance(a, b) == pytest.approx(3 * 4.0, rel=1e-9)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="argument `features`"):
        feature_statistics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="argument `sigma2`"):
        frechet_distance_from_statistics(
            np.zeros(2), np.eye(2), np.zeros(2), np.eye(3)
        )
    with pytest.raises(ValueError, match="argument `probabilities`"):
        class_coverage(np.zeros(3))


@pytest.fixture(scope="module")
def classifier():
    """Linear 2-class model on 2 features with a 3-unit hidden layer."""
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(3, name="hidden"),
            keras.layers.Dense(2, name="head"),
        ]
    )
    model.set_weights(
        [
            np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], "float32"),
            np.zeros(3, "float32"),
            np.array([[5.0, -5.0], [-5.0, 5.0], [0.0, 0.0]], "float32"),
            np.zeros(2, "float32"),
        ]
    )
    return model


def test_classifier_frechet_distance_matches_manual(classifier):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 2)).astype("float32")
    fake = (rng.normal(size=(150, 2)) * 2.0 + 1.0).astype("float32")
    fd = ClassifierFrechetDistance(classifier, real, batch_size=64)
    w = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    expected = frechet_distance(real @ w, fake @ w)
    np.testing.assert_allclose(fd(fake), expected, rtol=1e-4)
    results = fd.evaluate(fake)
    np.testing.assert_allclose(results["frechet_distance"], expected, 1e-4)
    # Logits are turned into probabilities for the coverage figures.
    logits = classifier(fake).numpy()
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(
        results["mean_confidence"], p.max(1).mean(), rtol=1e-5
    )
    assert results["coverage"] == 1.0


def test_feature_extractor_layers(classifier):
    by_name = feature_extractor(classifier, "hidden")
    by_default = feature_extractor(classifier)
    x = np.ones((1, 2), "float32")
    np.testing.assert_allclose(by_name(x), [[1.0, 1.0, 2.0]])
    np.testing.assert_allclose(by_default(x), [[1.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match="argument `layer`"):
        feature_extractor(classifier, "nope")
    with pytest.raises(ValueError, match="argument `real_data`"):
        ClassifierFrechetDistance(classifier)(x)


def test_loaded_classifier_with_flatten_layers():
    """Regression: an added Flatten must not clash with a loaded model's."""
    from keras_adv.testing import run_model_saving_test

    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Conv2D(2, 3),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(3),
        ]
    )
    x = np.random.default_rng(0).uniform(size=(20, 4, 4, 1)).astype("f4")
    loaded = run_model_saving_test(model, x)
    # Fresh name counters, as in a new process: an automatically named
    # Flatten would now be called "flatten" too.
    keras.backend.clear_session()
    fd = ClassifierFrechetDistance(loaded, x)  # features after "flatten"
    assert fd(x) == pytest.approx(0.0, abs=1e-6)
    extractor = feature_extractor(loaded, 0)  # conv output, rank 4
    assert extractor(x).shape == (20, 2 * 2 * 2)
