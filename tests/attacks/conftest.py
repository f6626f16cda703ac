"""Tiny hand-weighted models shared by the attack tests."""

import numpy as np
import pytest

from keras_adv.testing import linear_classifier


def hadamard_weights(features=16, classes=4):
    """Orthogonal +-1 class prototypes (rows 1..classes of a Hadamard)."""
    h = np.array([[1.0]])
    while h.shape[0] < features:
        h = np.block([[h, h], [h, -h]])
    return h[1 : classes + 1].T.astype("float32")


@pytest.fixture(scope="session")
def hadamard_problem():
    """A linear 4-class model on 16 features with inputs in [0.3, 0.7]."""
    rng = np.random.default_rng(0)
    w = hadamard_weights()
    model = linear_classifier(w)
    x = rng.uniform(0.3, 0.7, size=(200, 16)).astype("float32")
    y = np.argmax(x @ w, axis=1)
    targets = (y + 1 + rng.integers(0, 3, size=len(y))) % 4
    return model, w, x, y, targets


@pytest.fixture(scope="session")
def generic_problem():
    """A linear 4-class model with generic (random) weights.

    Unlike the Hadamard model, no gradient coordinate is exactly zero, so
    two numerically different but equivalent computations (XLA, softmax
    outputs) must produce the same signs.
    """
    rng = np.random.default_rng(4)
    w = rng.normal(size=(16, 4)).astype("float32")
    x = rng.uniform(0.3, 0.7, size=(64, 16)).astype("float32")
    return linear_classifier(w), w, x, np.argmax(x @ w, axis=1)
