"""DCGAN-style generator and discriminator builders (28x28, 32x32, ...)."""

from collections.abc import Sequence

import keras

from keras_adv import _validation
from keras_adv._types import ValueRange


def _check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        height, width, channels = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise ValueError(
            _validation.invalid(
                "image_shape", "(height, width, channels)", image_shape
            )
        ) from None
    if height != width or height < 8 or channels < 1:
        raise ValueError(
            _validation.invalid(
                "image_shape",
                "a square image of side >= 8, e.g. (28, 28, 1) or (32, 32, 3)",
                image_shape,
            )
        )
    return height, width, channels


def _upsampling_plan(side: int) -> tuple[int, int]:
    """Returns `(start, k)`: `side = start * 2**k` with `start <= 7`."""
    start, k = side, 0
    while start % 2 == 0 and start > 7:
        start //= 2
        k += 1
    if k == 0:
        raise ValueError(
            _validation.invalid(
                "image_shape",
                "a side divisible by 2 (e.g. 28 or 32)",
                side,
            )
        )
    return start, k


def dcgan_generator(
    latent_dim: int = 64,
    image_shape: Sequence[int] = (28, 28, 1),
    width: int = 64,
    batch_norm: bool = True,
    value_range: ValueRange = (0.0, 1.0),
    seed: int | None = None,
    name: str = "generator",
) -> keras.Sequential:
    """Builds a DCGAN-style generator `z -> image`.

    A dense projection to a `start x start` feature map (`start = 7` for
    28x28 images, `4` for 32x32), then stride-2 transposed convolutions that
    double the resolution and halve the channels, ReLU activations, optional
    batch normalisation after every hidden layer, and a sigmoid output
    rescaled to `value_range`.

    Args:
        latent_dim: Int, size of the latent vectors. Defaults to `64`.
        image_shape: `(side, side, channels)`. Defaults to `(28, 28, 1)`;
            `(32, 32, 3)` works too.
        width: Int, channels of the last hidden layer (earlier layers have
            `width * 2**i`). Defaults to `64`.
        batch_norm: Bool, batch normalisation after each hidden layer.
            Defaults to `True`.
        value_range: Pair `(low, high)` of the output pixels. Defaults to
            `(0.0, 1.0)`.
        seed: Int or None, weight-initialisation seed.
        name: String, the model name. Defaults to `"generator"`.

    Returns:
        A built `keras.Sequential`.

    Example:

    >>> from keras_adv.models import dcgan_generator
    >>> dcgan_generator(latent_dim=16, width=8).output_shape
    (None, 28, 28, 1)

    Reference:
        Radford et al., "Unsupervised Representation Learning with Deep
        Convolutional Generative Adversarial Networks",
        [arXiv:1511.06434](https://arxiv.org/abs/1511.06434).
    """
    latent_dim = _validation.check_int("latent_dim", latent_dim, minimum=1)
    width = _validation.check_int("width", width, minimum=1)
    side, _, channels = _check_image_shape(image_shape)
    low, high = _validation.check_value_range(value_range)
    start, k = _upsampling_plan(side)

    def init(i: int) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(
            seed=None if seed is None else seed + i
        )

    top = width * 2 ** (k - 1)
    layers = [
        keras.Input((latent_dim,)),
        keras.layers.Dense(
            start * start * top,
            use_bias=not batch_norm,
            kernel_initializer=init(0),
        ),
        keras.layers.Reshape((start, start, top)),
    ]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.ReLU())
    for i in range(1, k):
        layers.append(
            keras.layers.Conv2DTranspose(
                width * 2 ** (k - 1 - i),
                4,
                strides=2,
                padding="same",
                use_bias=not batch_norm,
                kernel_initializer=init(i),
            )
        )
        if batch_norm:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.ReLU())
    layers.append(
        keras.layers.Conv2DTranspose(
            channels,
            4,
            strides=2,
            padding="same",
            activation="sigmoid",
            kernel_initializer=init(k),
        )
    )
    if (low, high) != (0.0, 1.0):
        layers.append(keras.layers.Rescaling(high - low, offset=low))
    return keras.Sequential(layers, name=name)


def dcgan_discriminator(
    image_shape: Sequence[int] = (28, 28, 1),
    width: int = 64,
    batch_norm: bool = True,
    dropout: float = 0.0,
    seed: int | None = None,
    name: str = "discriminator",
) -> keras.Sequential:
    """Builds a DCGAN-style discriminator `image -> logit`.

    Stride-2 4x4 convolutions that halve the resolution and double the
    channels down to at most 7x7, LeakyReLU(0.2) activations, optional
    batch normalisation (never after the first layer), then a dense layer
    to one logit (no sigmoid: the GAN losses take logits).

    Args:
        image_shape: `(side, side, channels)`. Defaults to `(28, 28, 1)`.
        width: Int, channels of the first layer. Defaults to `64`.
        batch_norm: Bool, batch normalisation after the hidden convolutions
            but the first. Defaults to `True`.
        dropout: Float in `[0, 1)`, dropout after each hidden layer.
            Defaults to `0.0`.
        seed: Int or None, weight-initialisation seed.
        name: String, the model name. Defaults to `"discriminator"`.

    Returns:
        A built `keras.Sequential` with output shape `(batch, 1)`.

    Example:

    >>> from keras_adv.models import dcgan_discriminator
    >>> dcgan_discriminator(image_shape=(32, 32, 3), width=8).output_shape
    (None, 1)

    Reference:
        Radford et al., "Unsupervised Representation Learning with Deep
        Convolutional Generative Adversarial Networks",
        [arXiv:1511.06434](https://arxiv.org/abs/1511.06434).
    """
    width = _validation.check_int("width", width, minimum=1)
    side, _, channels = _check_image_shape(image_shape)
    dropout = _validation.check_number("dropout", dropout, minimum=0.0)
    if dropout >= 1.0:
        raise ValueError(
            _validation.invalid("dropout", "a number in [0, 1)", dropout)
        )
    _, k = _upsampling_plan(side)

    def init(i: int) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(
            seed=None if seed is None else seed + i
        )

    layers = [keras.Input((side, side, channels))]
    for i in range(k):
        layers.append(
            keras.layers.Conv2D(
                width * 2**i,
                4,
                strides=2,
                padding="same",
                use_bias=not (batch_norm and i > 0),
                kernel_initializer=init(i),
            )
        )
        if batch_norm and i > 0:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.LeakyReLU(negative_slope=0.2))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(1, kernel_initializer=init(k)),
    ]
    return keras.Sequential(layers, name=name)
