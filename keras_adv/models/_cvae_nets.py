"""The MNIST networks of Wong and Kolter (2021) as `PerturbationCVAE`s.

Both follow the reference configurations `mnist_fc` and `mnist_conv`
(Bernoulli decoder, sigmoid output):

* fully connected: each encoder is one hidden ReLU layer of 784 units
  with two linear heads of 784 (the latent is 784-dimensional); the
  decoder maps `[flatten(x), z]` through 784 ReLU units to 784 sigmoids;
* convolutional: each encoder is conv 3x3 (32) + max-pool, conv 3x3 (64) +
  max-pool and two conv 3x3 heads of 128 channels (a 128 x 7 x 7 latent);
  the decoder is conditioned on `x` at three scales: a 1x1 stride-4 conv
  of `x` joins `z` (7 x 7), a 1x1 stride-2 conv of `x` joins the
  upsampled features (14 x 14) and `x` itself joins them at 28 x 28.
"""

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Shape
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.models._cvae import PerturbationCVAE

MNIST_SHAPE = (28, 28, 1)


def _check_shape(
    input_shape: Sequence[int], multiple: int = 1
) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            _validation.invalid(
                "input_shape", "a tuple (height, width, channels)", input_shape
            )
        ) from None
    if (
        len(shape) != 3
        or min(shape) < 1
        or shape[0] % multiple
        or shape[1] % multiple
    ):
        raise ValueError(
            _validation.invalid(
                "input_shape",
                "(height, width, channels) with height and width divisible "
                f"by {multiple}",
                input_shape,
            )
        )
    return shape


def _dense_encoder(
    inputs: keras.KerasTensor | list[keras.KerasTensor],
    flat: keras.KerasTensor,
    hidden: int,
    latent_dim: int,
    name: str,
) -> keras.Model:
    h = keras.layers.Dense(hidden, activation="relu", name="hidden")(flat)
    mean = keras.layers.Dense(latent_dim, name="mean")(h)
    log_var = keras.layers.Dense(latent_dim, name="log_var")(h)
    return keras.Model(inputs, [mean, log_var], name=name)


def cvae_mnist_fc(
    hidden: int = 784,
    latent_dim: int = 784,
    input_shape: Sequence[int] = MNIST_SHAPE,
    **cvae_kwargs: Any,
) -> PerturbationCVAE:
    """The fully connected MNIST CVAE of the paper (latent 784).

    Args:
        hidden: Int >= 1, width of the hidden layers. Defaults to `784`.
        latent_dim: Int >= 1, latent dimension. Defaults to `784`.
        input_shape: `(height, width, channels)`. Defaults to `(28, 28, 1)`.
        **cvae_kwargs: `PerturbationCVAE` arguments (`beta`,
            `reconstruction`, `log_var_range`, `seed`, `name`).

    Returns:
        A `PerturbationCVAE` (compile it before `fit`).

    Example:

    >>> import keras_adv
    >>> cvae = keras_adv.models.cvae_mnist_fc(hidden=32, latent_dim=8)
    >>> cvae.latent_shape
    (8,)

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450) (reference
        `mnist_fc`).
    """
    hidden = _validation.check_int("hidden", hidden, minimum=1)
    latent_dim = _validation.check_int("latent_dim", latent_dim, minimum=1)
    shape = _check_shape(input_shape)
    size = math.prod(shape)

    x = keras.Input(shape, name="x")
    prior = _dense_encoder(
        x, keras.layers.Flatten()(x), hidden, latent_dim, "prior"
    )

    x = keras.Input(shape, name="x")
    x_tilde = keras.Input(shape, name="x_tilde")
    flat = keras.layers.Concatenate()(
        [keras.layers.Flatten()(x), keras.layers.Flatten()(x_tilde)]
    )
    recognition = _dense_encoder(
        [x, x_tilde], flat, hidden, latent_dim, "recognition"
    )

    x = keras.Input(shape, name="x")
    z = keras.Input((latent_dim,), name="z")
    h = keras.layers.Concatenate()([keras.layers.Flatten()(x), z])
    h = keras.layers.Dense(hidden, activation="relu", name="hidden")(h)
    h = keras.layers.Dense(size, activation="sigmoid", name="output")(h)
    decoder = keras.Model(
        [x, z], keras.layers.Reshape(shape)(h), name="decoder"
    )
    return PerturbationCVAE(prior, recognition, decoder, **cvae_kwargs)


def _conv_encoder(
    inputs: keras.KerasTensor | list[keras.KerasTensor],
    h: keras.KerasTensor,
    channels: Sequence[int],
    latent_channels: int,
    name: str,
) -> keras.Model:
    for i, width in enumerate(channels):
        h = keras.layers.Conv2D(
            width, 3, padding="same", activation="relu", name=f"conv{i + 1}"
        )(h)
        h = keras.layers.MaxPooling2D(2)(h)
    mean = keras.layers.Conv2D(latent_channels, 3, padding="same", name="mean")(
        h
    )
    log_var = keras.layers.Conv2D(
        latent_channels, 3, padding="same", name="log_var"
    )(h)
    return keras.Model(inputs, [mean, log_var], name=name)


def cvae_mnist_conv(
    channels: Sequence[int] = (32, 64),
    latent_channels: int = 128,
    input_shape: Sequence[int] = MNIST_SHAPE,
    **cvae_kwargs: Any,
) -> PerturbationCVAE:
    """The convolutional MNIST CVAE of the paper (latent 128 x 7 x 7).

    The decoder sees `x` at three scales (7 x 7 through a 1x1 stride-4
    conv, 14 x 14 through a 1x1 stride-2 conv, and 28 x 28 itself), so
    the latent code only has to carry the perturbation, not the digit.

    Args:
        channels: Pair of ints, widths of the two conv stages. Defaults to
            `(32, 64)`.
        latent_channels: Int >= 1, channels of the latent map. Defaults to
            `128`.
        input_shape: `(height, width, channels)`, height and width
            divisible by 4. Defaults to `(28, 28, 1)`.
        **cvae_kwargs: `PerturbationCVAE` arguments.

    Returns:
        A `PerturbationCVAE`.

    Example:

    >>> import keras_adv
    >>> keras_adv.models.cvae_mnist_conv(channels=(4, 8),
    ...     latent_channels=2).latent_shape
    (7, 7, 2)

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450) (reference
        `mnist_conv`).
    """
    if not isinstance(channels, list | tuple) or len(channels) != 2:
        raise ValueError(
            _validation.invalid("channels", "a pair of ints", channels)
        )
    c1, c2 = (_validation.check_int("channels", c, minimum=1) for c in channels)
    latent_channels = _validation.check_int(
        "latent_channels", latent_channels, minimum=1
    )
    shape = _check_shape(input_shape, multiple=4)
    depth = shape[-1]
    latent_shape = (shape[0] // 4, shape[1] // 4, latent_channels)

    x = keras.Input(shape, name="x")
    prior = _conv_encoder(x, x, (c1, c2), latent_channels, "prior")

    x = keras.Input(shape, name="x")
    x_tilde = keras.Input(shape, name="x_tilde")
    joined = keras.layers.Concatenate()([x, x_tilde])
    recognition = _conv_encoder(
        [x, x_tilde], joined, (c1, c2), latent_channels, "recognition"
    )

    x = keras.Input(shape, name="x")
    z = keras.Input(latent_shape, name="z")
    x4 = keras.layers.Conv2D(depth, 1, strides=4, name="x_down4")(x)
    x2 = keras.layers.Conv2D(depth, 1, strides=2, name="x_down2")(x)
    h = keras.layers.Concatenate()([x4, z])
    h = keras.layers.Conv2D(
        c2, 3, padding="same", activation="relu", name="conv3"
    )(h)
    h = keras.layers.UpSampling2D(2)(h)
    h = keras.layers.Concatenate()([x2, h])
    h = keras.layers.Conv2D(
        c1, 3, padding="same", activation="relu", name="conv4"
    )(h)
    h = keras.layers.UpSampling2D(2)(h)
    h = keras.layers.Concatenate()([x, h])
    out = keras.layers.Conv2D(
        depth, 3, padding="same", activation="sigmoid", name="output"
    )(h)
    decoder = keras.Model([x, z], out, name="decoder")
    return PerturbationCVAE(prior, recognition, decoder, **cvae_kwargs)


def _identity_grid(height: int, width: int) -> np.ndarray:
    """Normalised target coordinates `(H * W, 3)`: rows `[x, y, 1]`."""
    ys, xs = np.meshgrid(
        np.linspace(-1.0, 1.0, height),
        np.linspace(-1.0, 1.0, width),
        indexing="ij",
    )
    ones = np.ones(height * width)
    return np.stack([xs.ravel(), ys.ravel(), ones], axis=1).astype("float32")


@register
class AffineWarp(keras.layers.Layer):
    """Warps images by per-sample affine maps, differentiably (an STN).

    `[images (B, H, W, C), theta (B, 6)] -> images (B, H, W, C)`: output
    pixel `(x, y)` (normalised to `[-1, 1]`) samples the input at
    `A [x, y, 1]^T`, `A = reshape(theta, (2, 3))`, with bilinear
    interpolation and zeros outside the image. Differentiable in the
    images and in `theta` (the spatial transformer of Jaderberg et al.
    2015, with its identity at `theta = [1, 0, 0, 0, 1, 0]`).
    """

    def call(self, inputs: Sequence[TensorLike]) -> Tensor:
        images, theta = inputs
        images = ops.cast(images, "float32")
        _, height, width, channels = images.shape
        affine = ops.reshape(ops.cast(theta, "float32"), (-1, 2, 3))
        grid = ops.convert_to_tensor(_identity_grid(height, width))
        # Source coordinates (B, H * W, 2) in pixels.
        source = ops.einsum("pk,bjk->bpj", grid, affine)
        px = (source[..., 0] + 1.0) * 0.5 * (width - 1)
        py = (source[..., 1] + 1.0) * 0.5 * (height - 1)
        x0, y0 = ops.floor(px), ops.floor(py)
        flat = ops.reshape(images, (-1, height * width, channels))
        out = 0.0
        for dx in (0.0, 1.0):
            for dy in (0.0, 1.0):
                xi, yi = x0 + dx, y0 + dy
                weight = (1.0 - ops.abs(px - xi)) * (1.0 - ops.abs(py - yi))
                inside = (
                    (xi >= 0)
                    & (xi <= width - 1)
                    & (yi >= 0)
                    & (yi <= height - 1)
                )
                weight = ops.where(inside, weight, 0.0)
                index = ops.cast(
                    ops.clip(yi, 0, height - 1) * width
                    + ops.clip(xi, 0, width - 1),
                    "int32",
                )
                index = ops.repeat(index[..., None], channels, axis=-1)
                values = ops.take_along_axis(flat, index, axis=1)
                out = out + weight[..., None] * values
        return ops.reshape(out, (-1, height, width, channels))

    def compute_output_shape(self, input_shape: Sequence[Shape]) -> Shape:
        return input_shape[0]


def cvae_mnist_stn(
    latent_dim: int = 128,
    transformers: int = 5,
    input_shape: Sequence[int] = MNIST_SHAPE,
    **cvae_kwargs: Any,
) -> PerturbationCVAE:
    """A spatial-transformer CVAE for rotation/translation/scale sets.

    The paper's model for its MNIST RTS set (reference `mnist_stn`, here
    on the unpadded 28 x 28 images): encoders are two 5x5 conv stages
    (16 and 32 channels, ReLU, max-pool) with two linear heads of
    `latent_dim`; the decoder maps `z` to an image-sized map, from which
    each of `transformers` spatial transformers (a 512-128 ReLU MLP ending
    in 6 affine parameters initialised to the identity) warps `x`; two 5x5
    convs (16 channels, ReLU) and a 5x5 sigmoid conv combine the warped
    copies. Members of the set are then warps of `x`, which a local conv
    decoder (`cvae_mnist_conv`) cannot produce for large rotations.

    Args:
        latent_dim: Int >= 1. Defaults to `128`.
        transformers: Int >= 1, spatial transformers in the decoder.
            Defaults to `5`.
        input_shape: `(height, width, channels)`, divisible by 4. Defaults
            to `(28, 28, 1)`.
        **cvae_kwargs: `PerturbationCVAE` arguments.

    Returns:
        A `PerturbationCVAE`.

    Example:

    >>> import keras_adv
    >>> keras_adv.models.cvae_mnist_stn(latent_dim=8,
    ...     transformers=1).latent_shape
    (8,)

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450) (reference
        `mnist_stn`); Jaderberg et al., "Spatial Transformer Networks", NeurIPS
        2015, [arXiv:1506.02025](https://arxiv.org/abs/1506.02025).
    """
    latent_dim = _validation.check_int("latent_dim", latent_dim, minimum=1)
    transformers = _validation.check_int(
        "transformers", transformers, minimum=1
    )
    shape = _check_shape(input_shape, multiple=4)
    height, width, depth = shape
    layers = keras.layers

    def encoder(
        inputs: keras.KerasTensor | list[keras.KerasTensor],
        h: keras.KerasTensor,
        name: str,
    ) -> keras.Model:
        for i, channels in enumerate((16, 32)):
            h = layers.Conv2D(
                channels,
                5,
                padding="same",
                activation="relu",
                name=f"conv{i + 1}",
            )(h)
            h = layers.MaxPooling2D(2)(h)
        h = layers.Flatten()(h)
        mean = layers.Dense(latent_dim, name="mean")(h)
        log_var = layers.Dense(latent_dim, name="log_var")(h)
        return keras.Model(inputs, [mean, log_var], name=name)

    x = keras.Input(shape, name="x")
    prior = encoder(x, x, "prior")
    x = keras.Input(shape, name="x")
    x_tilde = keras.Input(shape, name="x_tilde")
    recognition = encoder(
        [x, x_tilde], layers.Concatenate()([x, x_tilde]), "recognition"
    )

    x = keras.Input(shape, name="x")
    z = keras.Input((latent_dim,), name="z")
    code = layers.Dense(height * width, name="code")(z)
    warped = []
    for i in range(transformers):
        h = layers.Dense(512, activation="relu", name=f"stn{i}_hidden1")(code)
        h = layers.Dense(128, activation="relu", name=f"stn{i}_hidden2")(h)
        theta = layers.Dense(
            6,
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(
                [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ),
            name=f"stn{i}_theta",
        )(h)
        warped.append(AffineWarp(name=f"stn{i}_warp")([x, theta]))
    h = warped[0] if transformers == 1 else layers.Concatenate()(warped)
    for i in range(2):
        h = layers.Conv2D(
            16, 5, padding="same", activation="relu", name=f"mix{i + 1}"
        )(h)
    out = layers.Conv2D(
        depth, 5, padding="same", activation="sigmoid", name="output"
    )(h)
    decoder = keras.Model([x, z], out, name="decoder")
    return PerturbationCVAE(prior, recognition, decoder, **cvae_kwargs)
