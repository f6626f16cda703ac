"""The networks of the AdvGAN paper: generator, discriminator, MNIST A/B/C.

Instance normalisation is Keras' `GroupNormalization` with one group per
channel. All builders return ordinary Functional or Sequential Keras
models; the classifiers output logits.
"""

from collections.abc import Sequence
from typing import Any
from typing import Literal

import keras

from keras_adv import _validation
from keras_adv._types import Norm
from keras_adv.layers import PerturbationBound


def _init(seed: int | None, offset: int) -> keras.initializers.Initializer:
    return keras.initializers.GlorotUniform(
        seed=None if seed is None else seed + offset
    )


def _instance_norm(filters: int) -> keras.layers.Layer:
    return keras.layers.GroupNormalization(groups=filters)


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            _validation.invalid(
                "input_shape", "(height, width, channels)", input_shape
            )
        ) from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            _validation.invalid(
                "input_shape", "(height, width, channels)", input_shape
            )
        )
    return shape


def advgan_generator(
    input_shape: Sequence[int] = (28, 28, 1),
    eps: float = 0.3,
    norm: Norm = "linf",
    num_classes: int | None = None,
    mode: Literal["tanh", "clip"] = "tanh",
    filters: int = 8,
    skip_connections: bool = False,
    target_maps: int = 0,
    seed: int | None = None,
    name: str = "advgan_generator",
) -> keras.Model:
    """The AdvGAN generator: `x -> perturbation` in the eps ball.

    The paper's image-to-image network (after CycleGAN's): `c3s1-8`
    (3x3 convolution, stride 1, 8 filters, instance norm, ReLU), `d16`,
    `d32` (3x3, stride 2), four `r32` residual blocks (two 3x3
    convolutions with 32 filters, instance norm, a skip connection), `u16`,
    `u8` (3x3 transposed convolutions, stride 2) and `c3s1-C` (3x3, `C`
    image channels, no norm), followed by
    `keras_adv.layers.PerturbationBound(eps, norm, mode)`.

    With `num_classes` the generator is conditioned on a target class (a
    targeted AdvGAN with one generator, ours; the paper trains one per
    target): it takes `[x, one-hot target]`, and every instance
    normalisation becomes a conditional one (Dumoulin et al.): its scale
    and shift are rows of a per-class table (`Dense` layers on the one-hot
    target, scale initialised to 1 and shift to 0). A target joined as
    constant extra channels would reach the output only at the borders:
    the convolution turns a constant channel into a constant offset (except
    where the zero padding cuts it), which the next instance normalisation
    subtracts again.

    Args:
        input_shape: `(height, width, channels)`, height and width
            multiples of 4. Defaults to `(28, 28, 1)`.
        eps: Float >= 0, radius of the perturbations. Defaults to `0.3`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        num_classes: Optional int >= 2: a conditioned generator.
        mode: `PerturbationBound` mode, `"tanh"` or `"clip"`. Defaults to
            `"tanh"`.
        filters: Int >= 1, filters of the first layer (the paper's 8);
            the others scale with it (`d16` is `2 * filters`, `r32`
            `4 * filters`). Defaults to `8`.
        skip_connections: Bool. `True` adds U-Net skip connections (ours,
            after Ronneberger et al.): after each upsampling, the encoder's
            features of the same resolution (and, at full resolution, the
            input) are concatenated and mixed by a 3x3 convolution with
            instance norm and ReLU, so the perturbation is shaped at full
            resolution rather than only from the 7x7 bottleneck (its
            measured effect: `docs/advgan.md`). Defaults to `False` (the
            paper's network).
        target_maps: Int >= 0, conditioned generators only. `k > 0` adds
            `k` learned full-resolution maps per target class (ours): a
            `Dense` layer on the one-hot target, zero-initialised, reshaped
            to `(height, width, k)` and joined to the input (and, with
            `skip_connections`, to the full-resolution skip), so the
            network is told *where* the target's strokes go, which
            conditional norms (one scale and shift per channel) cannot
            say (its measured effect: `docs/advgan.md`). Defaults to `0`.
        seed: Optional int, weight-initialisation seed.
        name: Model name.

    Returns:
        A Functional `keras.Model`.

    Raises:
        ValueError: for invalid arguments, or `target_maps > 0` without
            `num_classes`.

    Example:

    >>> import keras_adv
    >>> g = keras_adv.models.advgan_generator(eps=0.3)
    >>> g.output.shape
    (None, 28, 28, 1)

    Reference:
        Xiao et al., "Generating Adversarial Examples with Adversarial
        Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610); Zhu et al.,
        "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
        Networks", ICCV 2017,
        [arXiv:1703.10593](https://arxiv.org/abs/1703.10593); conditional
        instance normalisation: Dumoulin, Shlens and Kudlur, "A Learned
        Representation for Artistic Style", ICLR 2017,
        [arXiv:1610.07629](https://arxiv.org/abs/1610.07629); skip connections:
        Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for
        Biomedical Image Segmentation", MICCAI 2015,
        [arXiv:1505.04597](https://arxiv.org/abs/1505.04597).
    """
    height, width, channels = _check_shape(input_shape)
    if height % 4 or width % 4:
        raise ValueError(
            _validation.invalid(
                "input_shape",
                "height and width multiples of 4 (two stride-2 stages)",
                input_shape,
            )
        )
    if num_classes is not None:
        num_classes = _validation.check_int(
            "num_classes", num_classes, minimum=2
        )
    filters = _validation.check_int("filters", filters, minimum=1)
    skip_connections = _validation.check_bool(
        "skip_connections", skip_connections
    )
    target_maps = _validation.check_int("target_maps", target_maps, minimum=0)
    if target_maps and num_classes is None:
        raise ValueError(
            _validation.invalid(
                "target_maps",
                "0 for a generator without `num_classes` (the maps are "
                "looked up per target class)",
                target_maps,
            )
        )
    bound = PerturbationBound(eps, norm=norm, mode=mode, name="bound")
    counter = iter(range(1000))
    x = keras.Input(input_shape, name="x")
    inputs = [x]
    target = None
    if num_classes is not None:
        target = keras.Input((num_classes,), name="target")
        inputs.append(target)

    def norm_layer(t: keras.KerasTensor, filters: int) -> keras.KerasTensor:
        # Instance norm; conditioned: scale and shift looked up per target.
        if target is None:
            return _instance_norm(filters)(t)
        t = keras.layers.GroupNormalization(
            groups=filters, center=False, scale=False
        )(t)
        gamma = keras.layers.Dense(
            filters, kernel_initializer="zeros", bias_initializer="ones"
        )(target)
        beta = keras.layers.Dense(filters, kernel_initializer="zeros")(target)
        gamma = keras.layers.Reshape((1, 1, filters))(gamma)
        beta = keras.layers.Reshape((1, 1, filters))(beta)
        return keras.layers.Add()([keras.layers.Multiply()([t, gamma]), beta])

    def conv(
        t: keras.KerasTensor,
        filters: int,
        strides: int = 1,
        transpose: bool = False,
        norm_relu: bool = True,
    ) -> keras.KerasTensor:
        layer = (
            keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
        )
        t = layer(
            filters,
            3,
            strides=strides,
            padding="same",
            kernel_initializer=_init(seed, next(counter)),
        )(t)
        if norm_relu:
            t = norm_layer(t, filters)
            t = keras.layers.ReLU()(t)
        return t

    maps = []
    if target is not None and target_maps:
        m = keras.layers.Dense(
            height * width * target_maps, kernel_initializer="zeros"
        )(target)
        maps.append(keras.layers.Reshape((height, width, target_maps))(m))
    f1, f2, f4 = filters, 2 * filters, 4 * filters
    e1 = conv(keras.layers.Concatenate()([x, *maps]) if maps else x, f1)
    e2 = conv(e1, f2, strides=2)
    h = conv(e2, f4, strides=2)
    for _ in range(4):
        r = conv(h, f4)
        r = conv(r, f4, norm_relu=False)
        r = norm_layer(r, f4)
        h = keras.layers.Add()([h, r])
    h = conv(h, f2, strides=2, transpose=True)
    if skip_connections:
        h = conv(keras.layers.Concatenate()([h, e2]), f2)
    h = conv(h, f1, strides=2, transpose=True)
    if skip_connections:
        h = conv(keras.layers.Concatenate()([h, e1, x, *maps]), f1)
    raw = conv(h, channels, norm_relu=False)
    delta = bound(raw)
    return keras.Model(inputs if len(inputs) > 1 else x, delta, name=name)


def advgan_discriminator(
    input_shape: Sequence[int] = (28, 28, 1),
    seed: int | None = None,
    name: str = "advgan_discriminator",
) -> keras.Sequential:
    """The AdvGAN discriminator: `x -> one logit`.

    `C8` (4x4 convolution, stride 2, LeakyReLU 0.2, no normalisation),
    `C16` and `C32` (4x4 convolution, stride 2, instance norm, LeakyReLU
    0.2), then a dense layer with one output (no sigmoid).

    Args:
        input_shape: `(height, width, channels)`. Defaults to `(28, 28, 1)`.
        seed: Optional int, weight-initialisation seed.
        name: Model name.

    Returns:
        A Sequential `keras.Model`.

    Example:

    >>> import numpy as np, keras_adv
    >>> d = keras_adv.models.advgan_discriminator()
    >>> tuple(d(np.zeros((2, 28, 28, 1), "float32")).shape)
    (2, 1)

    Reference:
        Xiao et al., "Generating Adversarial Examples with Adversarial
        Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610).
    """
    shape = _check_shape(input_shape)
    layers = [keras.Input(shape)]
    for i, filters in enumerate((8, 16, 32)):
        layers.append(
            keras.layers.Conv2D(
                filters,
                4,
                strides=2,
                padding="same",
                kernel_initializer=_init(seed, i),
            )
        )
        if i:
            layers.append(_instance_norm(filters))
        layers.append(keras.layers.LeakyReLU(0.2))
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(1, kernel_initializer=_init(seed, 9)),
    ]
    return keras.Sequential(layers, name=name)


def _classifier(
    layers: Sequence[tuple[str, Any]],
    num_classes: int,
    seed: int | None,
    name: str,
    input_shape: Sequence[int],
) -> keras.Sequential:
    shape = _check_shape(input_shape)
    num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
    built = [keras.Input(shape)]
    for i, (kind, args) in enumerate(layers):
        if kind == "conv":
            filters, size, strides, padding = args
            built.append(
                keras.layers.Conv2D(
                    filters,
                    size,
                    strides=strides,
                    padding=padding,
                    activation="relu",
                    kernel_initializer=_init(seed, i),
                )
            )
        elif kind == "dense":
            built.append(
                keras.layers.Dense(
                    args, activation="relu", kernel_initializer=_init(seed, i)
                )
            )
        elif kind == "dropout":
            built.append(keras.layers.Dropout(args, seed=seed))
        elif kind == "pool":
            built.append(keras.layers.MaxPooling2D(2))
        else:
            built.append(keras.layers.Flatten())
    built.append(
        keras.layers.Dense(num_classes, kernel_initializer=_init(seed, 99))
    )
    return keras.Sequential(built, name=name)


def mnist_model_a(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    seed: int | None = None,
) -> keras.Sequential:
    """MNIST model A of Tramèr et al. (the AdvGAN paper's model A).

    Conv(64, 5x5) + ReLU, Conv(64, 5x5) + ReLU (valid padding),
    Dropout(0.25), FC(128) + ReLU, Dropout(0.5), FC(10) logits.

    Example:

    >>> import keras_adv
    >>> keras_adv.models.mnist_model_a().count_params()
    3382346

    Reference:
        Tramèr et al., "Ensemble Adversarial Training: Attacks and Defenses",
        ICLR 2018, [arXiv:1705.07204](https://arxiv.org/abs/1705.07204)
        (Appendix, Table 5).
    """
    spec = [
        ("conv", (64, 5, 1, "valid")),
        ("conv", (64, 5, 1, "valid")),
        ("dropout", 0.25),
        ("flatten", None),
        ("dense", 128),
        ("dropout", 0.5),
    ]
    return _classifier(spec, num_classes, seed, "mnist_model_a", input_shape)


def mnist_model_b(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    seed: int | None = None,
) -> keras.Sequential:
    """MNIST model B of Tramèr et al. (the AdvGAN paper's model B).

    Dropout(0.2), Conv(64, 8x8, stride 2, same) + ReLU, Conv(128, 6x6,
    stride 2, valid) + ReLU, Conv(128, 5x5, stride 1, valid) + ReLU,
    Dropout(0.5), FC(10) logits.

    Example:

    >>> import keras_adv
    >>> keras_adv.models.mnist_model_b().count_params()
    710218

    Reference:
        Tramèr et al., "Ensemble Adversarial Training: Attacks and Defenses",
        ICLR 2018, [arXiv:1705.07204](https://arxiv.org/abs/1705.07204)
        (Appendix, Table 5).
    """
    spec = [
        ("dropout", 0.2),
        ("conv", (64, 8, 2, "same")),
        ("conv", (128, 6, 2, "valid")),
        ("conv", (128, 5, 1, "valid")),
        ("dropout", 0.5),
        ("flatten", None),
    ]
    return _classifier(spec, num_classes, seed, "mnist_model_b", input_shape)


def mnist_model_c(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    seed: int | None = None,
) -> keras.Sequential:
    """The MNIST model of Carlini and Wagner (the AdvGAN paper's model C).

    Conv(32, 3x3) + ReLU, Conv(32, 3x3) + ReLU, MaxPool(2x2),
    Conv(64, 3x3) + ReLU, Conv(64, 3x3) + ReLU, MaxPool(2x2),
    FC(200) + ReLU, Dropout(0.5), FC(200) + ReLU, FC(10) logits (valid
    padding).

    Example:

    >>> import keras_adv
    >>> keras_adv.models.mnist_model_c().count_params()
    312202

    Reference:
        Carlini and Wagner, "Towards Evaluating the Robustness of Neural
        Networks", IEEE S&P 2017,
        [arXiv:1608.04644](https://arxiv.org/abs/1608.04644).
    """
    spec = [
        ("conv", (32, 3, 1, "valid")),
        ("conv", (32, 3, 1, "valid")),
        ("pool", None),
        ("conv", (64, 3, 1, "valid")),
        ("conv", (64, 3, 1, "valid")),
        ("pool", None),
        ("flatten", None),
        ("dense", 200),
        ("dropout", 0.5),
        ("dense", 200),
    ]
    return _classifier(spec, num_classes, seed, "mnist_model_c", input_shape)
