"""Class-conditional DCGAN builders: a label-conditioned generator and a
projection discriminator (28x28, 32x32, ...)."""

from collections.abc import Sequence
from typing import Any

import keras

from keras_adv import _validation
from keras_adv._types import ValueRange
from keras_adv.models._dcgan import _check_image_shape
from keras_adv.models._dcgan import _upsampling_plan
from keras_adv.models._dcgan import dcgan_generator


def _initializer(seed: int | None, i: int) -> keras.initializers.Initializer:
    return keras.initializers.GlorotUniform(
        seed=None if seed is None else seed + i
    )


def conditional_dcgan_generator(
    latent_dim: int = 64,
    num_classes: int = 10,
    image_shape: Sequence[int] = (28, 28, 1),
    width: int = 64,
    embedding_dim: int = 16,
    batch_norm: bool = True,
    value_range: ValueRange = (0.0, 1.0),
    seed: int | None = None,
    name: str = "generator",
) -> keras.Model:
    """Builds a class-conditional DCGAN generator `[z, labels] -> image`.

    The class label is embedded (a learned `embedding_dim` vector per
    class), concatenated to the latent vector, and the result goes through
    the network of `keras_adv.models.dcgan_generator` (a dense projection,
    stride-2 transposed convolutions, a sigmoid output rescaled to
    `value_range`), as in the conditional GAN of Mirza and Osindero.

    Args:
        latent_dim: Int, size of the latent vectors. Defaults to `64`.
        num_classes: Int >= 2, number of classes. Defaults to `10`.
        image_shape: `(side, side, channels)`. Defaults to `(28, 28, 1)`.
        width: Int, channels of the last hidden layer. Defaults to `64`.
        embedding_dim: Int, size of the label embedding. Defaults to `16`.
        batch_norm: Bool, batch normalisation after each hidden layer.
            Defaults to `True`.
        value_range: Pair `(low, high)` of the output pixels. Defaults to
            `(0.0, 1.0)`.
        seed: Int or None, weight-initialisation seed.
        name: String, the model name. Defaults to `"generator"`.

    Returns:
        A built functional `keras.Model` with inputs `[z, labels]`: float
        latents `(batch, latent_dim)` and int class ids `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.models import conditional_dcgan_generator
    >>> g = conditional_dcgan_generator(latent_dim=8, width=4, seed=0)
    >>> z = np.zeros((2, 8), "float32")
    >>> tuple(g([z, np.array([3, 7])]).shape)
    (2, 28, 28, 1)

    Reference:
        Mirza and Osindero, "Conditional Generative Adversarial Nets",
        [arXiv:1411.1784](https://arxiv.org/abs/1411.1784). Radford et al.,
        "Unsupervised Representation Learning with Deep Convolutional
        Generative Adversarial Networks",
        [arXiv:1511.06434](https://arxiv.org/abs/1511.06434).
    """
    latent_dim = _validation.check_int("latent_dim", latent_dim, minimum=1)
    num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
    embedding_dim = _validation.check_int(
        "embedding_dim", embedding_dim, minimum=1
    )
    body = dcgan_generator(
        latent_dim=latent_dim + embedding_dim,
        image_shape=image_shape,
        width=width,
        batch_norm=batch_norm,
        value_range=value_range,
        seed=None if seed is None else seed + 1,
        name="upsampling",
    )
    z = keras.Input((latent_dim,), name="latent")
    labels = keras.Input((), dtype="int32", name="labels")
    embedded = keras.layers.Embedding(
        num_classes,
        embedding_dim,
        embeddings_initializer=keras.initializers.RandomNormal(
            stddev=1.0, seed=seed
        ),
        name="label_embedding",
    )(labels)
    joint = keras.layers.Concatenate(name="latent_and_label")([z, embedded])
    return keras.Model([z, labels], body(joint), name=name)


def projection_discriminator(
    image_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    width: int = 64,
    spectral_norm: bool = True,
    dropout: float = 0.0,
    seed: int | None = None,
    name: str = "discriminator",
) -> keras.Model:
    """Builds a projection discriminator `[image, labels] -> logit`.

    The logit of an image `x` with class `y` is (Miyato and Koyama 2018,
    eq. 3)

        f(x, y) = psi(phi(x)) + v_y . phi(x)

    where `phi(x)` are the image's features (stride-2 4x4 convolutions
    with LeakyReLU(0.2), down to at most 7x7, flattened: the network of
    `keras_adv.models.dcgan_discriminator` without batch normalisation),
    `psi` is a dense layer to one logit (the unconditional term), and `v_y`
    is row `y` of a learned class-embedding matrix `V` (the projection
    term `y^T V phi(x)` for a one-hot `y`). The embedding is a bias-free
    dense layer on one-hot labels, so that spectral normalisation applies
    to `V` as to every other weight, as in the paper.

    Args:
        image_shape: `(side, side, channels)`. Defaults to `(28, 28, 1)`.
        num_classes: Int >= 2, number of classes. Defaults to `10`.
        width: Int, channels of the first convolution (doubled at each
            following one). Defaults to `64`.
        spectral_norm: Bool, wrap every convolution, `psi` and `V` in
            `keras.layers.SpectralNormalization` (Miyato et al. 2018).
            Defaults to `True`.
        dropout: Float in `[0, 1)`, dropout after each convolution.
            Defaults to `0.0`.
        seed: Int or None, weight-initialisation seed.
        name: String, the model name. Defaults to `"discriminator"`.

    Returns:
        A built functional `keras.Model` with inputs `[images, labels]`
        (int class ids `(batch,)`) and logits `(batch, 1)`; its layers
        `"features"` (`phi`), `"psi"` and `"class_embedding"` (`V`) are
        reachable with `get_layer`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.models import projection_discriminator
    >>> d = projection_discriminator(width=4, seed=0)
    >>> x = np.zeros((2, 28, 28, 1), "float32")
    >>> tuple(d([x, np.array([0, 9])]).shape)
    (2, 1)

    Reference:
        Miyato and Koyama, "cGANs with Projection Discriminator", ICLR
        2018, [arXiv:1802.05637](https://arxiv.org/abs/1802.05637). Miyato
        et al., "Spectral Normalization for Generative Adversarial
        Networks", ICLR 2018,
        [arXiv:1802.05957](https://arxiv.org/abs/1802.05957).
    """
    num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
    width = _validation.check_int("width", width, minimum=1)
    spectral_norm = _validation.check_bool("spectral_norm", spectral_norm)
    dropout = _validation.check_number("dropout", dropout, minimum=0.0)
    if dropout >= 1.0:
        raise ValueError(
            _validation.invalid("dropout", "a number in [0, 1)", dropout)
        )
    side, _, channels = _check_image_shape(image_shape)
    _, k = _upsampling_plan(side)

    def weighted(
        cls: type[keras.layers.Layer], name: str, **kwargs: Any
    ) -> keras.layers.Layer:
        # With spectral normalisation the wrapper carries the name.
        if not spectral_norm:
            return cls(name=name, **kwargs)
        inner = cls(name=f"{name}_unnormalized", **kwargs)
        return keras.layers.SpectralNormalization(inner, name=name)

    images = keras.Input((side, side, channels), name="images")
    labels = keras.Input((), dtype="int32", name="labels")
    h = images
    for i in range(k):
        h = weighted(
            keras.layers.Conv2D,
            f"conv_{i}",
            filters=width * 2**i,
            kernel_size=4,
            strides=2,
            padding="same",
            kernel_initializer=_initializer(seed, i),
        )(h)
        h = keras.layers.LeakyReLU(negative_slope=0.2)(h)
        if dropout:
            h = keras.layers.Dropout(
                dropout, seed=None if seed is None else seed + i
            )(h)
    features = keras.layers.Flatten(name="features")(h)
    unconditional = weighted(
        keras.layers.Dense,
        "psi",
        units=1,
        kernel_initializer=_initializer(seed, k),
    )(features)
    one_hot = keras.layers.CategoryEncoding(
        num_classes, output_mode="one_hot", name="one_hot"
    )(labels)
    class_vectors = weighted(
        keras.layers.Dense,
        "class_embedding",
        units=features.shape[-1],
        use_bias=False,
        kernel_initializer=_initializer(seed, k + 1),
    )(one_hot)
    projection = keras.layers.Dot(axes=-1, name="projection")(
        [class_vectors, features]
    )
    logits = keras.layers.Add(name="logits")([unconditional, projection])
    model = keras.Model([images, labels], logits, name=name)
    if spectral_norm and seed is not None:
        # Keras draws the power-iteration vectors unseeded: seed them too.
        for i, layer in enumerate(model.layers):
            if isinstance(layer, keras.layers.SpectralNormalization):
                u = layer.vector_u
                u.assign(
                    keras.random.truncated_normal(
                        u.shape, stddev=0.02, seed=seed + 100 + i
                    )
                )
    return model
