"""Small image classifiers: the recipes' CNN, a smaller one, IBP's CNNs."""

from collections.abc import Sequence

import keras

from keras_adv import _validation
from keras_adv.models._initializers import IBPNormal


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


#: Gowal et al.'s CNNs: `(filters, kernel, stride, padding)` per
#: convolution, then the hidden dense layers' units.
_IBP_CNNS = {
    "small": (((16, 4, 2, "valid"), (32, 4, 1, "valid")), (100,)),
    "medium": (
        (
            (32, 3, 1, "valid"),
            (32, 4, 2, "valid"),
            (64, 3, 1, "valid"),
            (64, 4, 2, "valid"),
        ),
        (512, 512),
    ),
    "large": (
        (
            (64, 3, 1, "same"),
            (64, 3, 1, "same"),
            (128, 3, 2, "same"),
            (128, 3, 1, "same"),
            (128, 3, 1, "same"),
        ),
        (200,),
    ),
}


def ibp_cnn(
    size: str = "small",
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    seed: int | None = 0,
    initializer: str = "ibp",
) -> keras.Sequential:
    """The small, medium and large CNNs of verified training (logits).

    The models of Gowal et al. 2018 (also CROWN-IBP's "DM-small/medium/
    large"): strided convolutions and dense layers, each followed by a
    ReLU, then a logits layer. No pooling, dropout or normalization, so
    every bound method supports them, CROWN-IBP included
    (`keras_adv.training.IBP`, `keras_adv.training.CROWNIBP`). One seed per
    layer derived from `seed`.

    The hidden layers are initialised with Shi et al.'s IBP initialization
    (`IBPNormal`), which keeps interval bounds from growing with depth,
    and the logits layer LeCun-normal. `initializer="lecun"` gives every
    layer the LeCun-normal initialization of Gowal et al.'s code (Sonnet's
    default), which needs the papers' long eps ramps: on the MNIST
    subset's 20-epoch schedule (`examples/verified_training_mnist.py`)
    the medium model trained from it with IBP or CROWN-IBP collapsed to a
    constant output (10 % accuracy) within the first ramp epoch, and
    trains from the IBP initialization.

    - `"small"`: conv 16 4x4 stride 2, conv 32 4x4 stride 1 ("valid"),
      dense 100.
    - `"medium"`: conv 32 3x3 / 1, 32 4x4 / 2, 64 3x3 / 1, 64 4x4 / 2
      ("valid"), dense 512, dense 512.
    - `"large"`: conv 64 3x3 / 1, 64 3x3 / 1, 128 3x3 / 2, 128 3x3 / 1,
      128 3x3 / 1 ("same"), dense 200.

    Args:
        size: `"small"`, `"medium"` or `"large"`. Defaults to `"small"`.
        input_shape: Input shape without batch. Defaults to `(28, 28, 1)`.
        num_classes: Number of classes. Defaults to `10`.
        seed: Int, weight-initialisation seed, or None. Defaults to `0`.
        initializer: `"ibp"` (the hidden layers `IBPNormal`) or `"lecun"`
            (every layer LeCun-normal). Defaults to `"ibp"`.

    Returns:
        A `keras.Sequential`.

    Example:

    >>> import keras_adv
    >>> model = keras_adv.models.ibp_cnn("small")
    >>> model.output_shape, model.count_params()
    ((None, 10), 329606)

    Reference:
        Gowal et al., "On the Effectiveness of Interval Bound Propagation
        for Training Verifiably Robust Models", 2018,
        [arXiv:1810.12715](https://arxiv.org/abs/1810.12715). Shi et al.,
        "Fast Certified Robust Training with Short Warmup", NeurIPS 2021,
        [arXiv:2103.17268](https://arxiv.org/abs/2103.17268).
    """
    initializer = _validation.check_choice(
        "initializer", initializer, ("ibp", "lecun")
    )
    if size not in _IBP_CNNS:
        raise ValueError(
            "Invalid value received for argument `size`. Expected one of "
            f"{sorted(_IBP_CNNS)}. Received: size={size!r}"
        )
    convolutions, dense = _IBP_CNNS[size]

    def init(index: int, hidden: bool = True) -> keras.initializers.Initializer:
        layer_seed = None if seed is None else seed + index
        if hidden and initializer == "ibp":
            return IBPNormal(seed=layer_seed)
        return keras.initializers.LecunNormal(seed=layer_seed)

    layers: list[keras.layers.Layer] = [keras.Input(tuple(input_shape))]
    for i, (filters, kernel, stride, padding) in enumerate(convolutions):
        layers.append(
            keras.layers.Conv2D(
                filters,
                kernel,
                strides=stride,
                padding=padding,
                activation="relu",
                kernel_initializer=init(i),
            )
        )
    layers.append(keras.layers.Flatten())
    for j, units in enumerate(dense, start=len(convolutions)):
        layers.append(
            keras.layers.Dense(
                units, activation="relu", kernel_initializer=init(j)
            )
        )
    layers.append(
        keras.layers.Dense(
            num_classes,
            kernel_initializer=init(
                len(convolutions) + len(dense), hidden=False
            ),
        )
    )
    return keras.Sequential(layers)
