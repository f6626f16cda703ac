"""Tiny deterministic models for tests, examples and benchmarks."""

import keras
import numpy as np
from numpy.typing import ArrayLike


def linear_classifier(
    weights: ArrayLike, bias: ArrayLike | None = None, softmax: bool = False
) -> keras.Sequential:
    """A Sequential `x -> x @ W + b` (logits, or probabilities).

    Args:
        weights: Array of shape `(features, classes)`.
        bias: Optional array of shape `(classes,)`; zeros by default.
        softmax: Bool, end in a softmax (outputs probabilities).

    Returns:
        A built `keras.Sequential` with the given weights.
    """
    weights = np.asarray(weights, "float32")
    bias = np.zeros(weights.shape[1], "float32") if bias is None else bias
    model = keras.Sequential(
        [
            keras.Input((weights.shape[0],)),
            keras.layers.Dense(
                weights.shape[1], activation="softmax" if softmax else None
            ),
        ]
    )
    model.set_weights([weights, np.asarray(bias, "float32")])
    return model
