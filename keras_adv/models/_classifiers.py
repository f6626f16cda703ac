"""Small image classifiers: the recipes' CNN and a smaller one."""

from collections.abc import Sequence

import keras


def mnist_cnn(
    width: int = 32,
    dense: int = 128,
    num_classes: int = 10,
    seed: int | None = 0,
) -> keras.Sequential:
    """The CNN of the MNIST adversarial-training recipe (logits).

    Two blocks of (3x3 conv, "same" padding, ReLU, 2x2 max-pool) with
    `width` and `2 * width` filters, a ReLU dense layer and a logits layer,
    He-normal initialised. With the defaults (32/64 filters, dense 128) it
    is the model of `keras_adv.recipes.mnist_adversarial_training` and
    `keras-adv demo`, which reaches the documented MNIST robustness.

    Args:
        width: Filters of the first conv layer. Defaults to `32`.
        dense: Units of the hidden dense layer. Defaults to `128`.
        num_classes: Number of classes. Defaults to `10`.
        seed: Int, weight-initialisation seed. Defaults to `0`.

    Returns:
        A `keras.Sequential` taking `(28, 28, 1)` images.

    Example:

    >>> import keras_adv
    >>> model = keras_adv.models.mnist_cnn(width=8, dense=16)
    >>> model.input_shape, model.output_shape
    ((None, 28, 28, 1), (None, 10))
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


def small_cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    width: int = 16,
    softmax: bool = False,
    seed: int | None = 0,
) -> keras.Sequential:
    """A small CNN for any image shape: two conv blocks and a dense head.

    Two blocks of (3x3 conv without padding, ReLU, 2x2 max-pool) with
    `width` and `2 * width` filters, a ReLU dense layer of 64 units and an
    output layer, Glorot-uniform initialised. `keras-adv train` trains it
    on the data it is given (MNIST, Fashion-MNIST, CIFAR-10 or npz files).

    Args:
        input_shape: Input shape without batch. Defaults to `(28, 28, 1)`.
        num_classes: Number of classes. Defaults to `10`.
        width: Filters of the first conv layer (the second has twice as
            many). Defaults to `16`.
        softmax: Bool, end in a softmax. Defaults to `False` (logits).
        seed: Int, weight-initialisation seed. Defaults to `0`.

    Returns:
        A `keras.Sequential`.

    Example:

    >>> import keras_adv
    >>> model = keras_adv.models.small_cnn((32, 32, 3), num_classes=3)
    >>> model.output_shape
    (None, 3)
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
