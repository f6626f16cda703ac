"""Tiny deterministic models for tests, examples and benchmarks."""

import keras
import numpy as np


def linear_classifier(weights, bias=None, softmax=False):
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


def small_cnn(
    input_shape=(28, 28, 1), num_classes=10, width=16, softmax=False, seed=0
):
    """A small MNIST-sized CNN: two conv blocks and a dense head (logits).

    Args:
        input_shape: Input shape without batch. Defaults to `(28, 28, 1)`.
        num_classes: Number of classes. Defaults to `10`.
        width: Filters of the first conv layer (the second has twice as
            many). Defaults to `16`.
        softmax: Bool, end in a softmax. Defaults to `False` (logits).
        seed: Int, weight-initialisation seed. Defaults to `0`.
    """
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(
                width, 3, activation="relu", kernel_initializer=init
            ),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(
                2 * width, 3, activation="relu", kernel_initializer=init
            ),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", kernel_initializer=init),
            keras.layers.Dense(
                num_classes,
                activation="softmax" if softmax else None,
                kernel_initializer=init,
            ),
        ]
    )


def mnist_cnn(width=32, dense=128, num_classes=10, seed=0):
    """The CNN of the MNIST adversarial-training examples (logits).

    Two blocks of (3x3 conv, "same" padding, ReLU, 2x2 max-pool) with
    `width` and `2 * width` filters, a ReLU dense layer and a logits layer,
    He-normal initialised. With the defaults (32/64 filters, dense 128) it
    is the model that reaches the documented MNIST-subset robustness.

    Args:
        width: Filters of the first conv layer. Defaults to `32`.
        dense: Units of the hidden dense layer. Defaults to `128`.
        num_classes: Number of classes. Defaults to `10`.
        seed: Int, weight-initialisation seed. Defaults to `0`.
    """
    init = keras.initializers.HeNormal(seed=seed)
    conv = dict(activation="relu", padding="same", kernel_initializer=init)
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(width, 3, **conv),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(2 * width, 3, **conv),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(
                dense, activation="relu", kernel_initializer=init
            ),
            keras.layers.Dense(num_classes, kernel_initializer=init),
        ]
    )
