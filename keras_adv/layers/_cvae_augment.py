"""`CVAEAugmentation`: data augmentation from a learned perturbation set."""

from typing import Any

import keras
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Shape
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange
from keras_adv.threat_models._learned import check_cvae


@register
class CVAEAugmentation(keras.layers.Layer):
    """Replaces inputs by random members of a learned set while training.

    With `training=True` each input `x` becomes, with probability `rate`,
    `clip(g(mu_p(x) + sigma_p(x) * u, x))` with `u ~ N(0, I)` (a draw
    from the CVAE's prior), optionally projected onto `radius`; the layer
    is the identity at inference. Put it first in a classifier (like
    `keras.layers.RandomRotation`) to train on learned perturbations in any
    `fit`. The CVAE is frozen (its weights are saved with the model that
    holds the layer).

    Args:
        cvae: A trained `keras_adv.models.PerturbationCVAE`.
        radius: Optional float > 0: draws with `||u||_2 > radius` are
            projected onto the radius. Defaults to `None` (no limit).
        rate: Float in `[0, 1]`, the share of inputs replaced. Defaults to
            `1.0`.
        value_range: Pair `(low, high)` the members are clipped to; the
            inputs must lie in it (checked in the graph while training).
            Defaults to `(0.0, 1.0)`.
        seed: Int or None. Defaults to `None`.
        **kwargs: Base layer arguments.

    Example:

    >>> import numpy as np, keras_adv
    >>> cvae = keras_adv.models.cvae_mnist_fc(hidden=8, latent_dim=4,
    ...     input_shape=(2, 2, 1))
    >>> layer = keras_adv.layers.CVAEAugmentation(cvae, seed=0)
    >>> x = np.full((3, 2, 2, 1), 0.5, "float32")
    >>> bool(np.all(np.asarray(layer(x)) == x))  # inference: identity
    True
    >>> tuple(layer(x, training=True).shape)
    (3, 2, 2, 1)

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450) (data augmentation
        with the learned set).
    """

    def __init__(
        self,
        cvae: keras.Model | Config,
        radius: float | None = None,
        rate: float = 1.0,
        value_range: ValueRange = (0.0, 1.0),
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cvae = check_cvae(cvae)
        self.cvae.trainable = False
        if radius is not None:
            radius = _validation.check_number(
                "radius", radius, minimum=0.0, strict=True
            )
        self.radius = radius
        self.rate = _validation.check_number("rate", rate, minimum=0.0)
        if self.rate > 1.0:
            raise ValueError(
                _validation.invalid("rate", "a number in [0, 1]", rate)
            )
        self.value_range = _validation.check_value_range(value_range)
        if seed is not None:
            seed = _validation.check_int("seed", seed, minimum=0)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs: TensorLike, training: bool | None = False) -> Tensor:
        if not training or self.rate == 0.0:
            return inputs
        x = _validation.after_checks(
            _validation.value_range_assertions(
                inputs, self.value_range, "inputs"
            ),
            ops.cast(inputs, "float32"),
        )
        mean, log_var = self.cvae.encode_prior(x)
        u = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        if self.radius is not None:
            axes = list(range(1, len(mean.shape)))
            norm = ops.sqrt(ops.sum(ops.square(u), axis=axes, keepdims=True))
            u = u * ops.minimum(1.0, self.radius / ops.maximum(norm, 1e-12))
        members = self.cvae.decode(x, mean + ops.exp(0.5 * log_var) * u)
        low, high = self.value_range
        members = ops.stop_gradient(ops.clip(members, low, high))
        if self.rate < 1.0:
            keep = keras.random.uniform(
                [ops.shape(x)[0]], seed=self.seed_generator
            )
            replace = ops.reshape(
                keep < self.rate, [-1] + [1] * (len(x.shape) - 1)
            )
            members = ops.where(replace, members, x)
        return ops.cast(members, inputs.dtype)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        # The CVAE's own loss trackers ("loss", "kl_loss", ...) must not
        # join the metrics of the model that holds this layer.
        return []

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            cvae=keras.saving.serialize_keras_object(self.cvae),
            radius=self.radius,
            rate=self.rate,
            value_range=list(self.value_range),
            seed=self.seed,
        )
        return config
