"""`RandomLpNoise`: training-time noise inside an Lp ball."""

from typing import Any
from typing import Literal

import keras
from keras import ops

from keras_adv import _validation
from keras_adv import threat_models
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Norm
from keras_adv._types import Shape
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange

DISTRIBUTIONS = ("uniform", "gaussian")


@register
class RandomLpNoise(keras.layers.Layer):
    """Adds random noise inside the Lp ball of radius `eps` while training.

    Like `keras.layers.GaussianNoise`, it is active only with
    `training=True` and the identity at inference. `"uniform"` draws
    uniformly from the ball (the cube for L-inf); `"gaussian"` draws
    `N(0, sigma^2)` per coordinate with `sigma = eps / 2` (L-inf) or
    `eps / (2 sqrt(d))` (L2, so the norm concentrates near `eps / 2`) and
    projects the draw onto the ball. With `value_range` the result is
    clipped to it, and inputs outside it (pixels in 0..255 for a range
    `(0, 1)`) fail the call with an error naming them rather than being
    clipped (an in-graph check, only where noise is applied: while
    training). Noise inside the ball is
    the cheapest robustness baseline and the random start of single-step
    adversarial training.

    Args:
        eps: Float >= 0, radius of the ball.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        distribution: `"uniform"` or `"gaussian"`. Defaults to
            `"uniform"`.
        value_range: Optional pair `(low, high)` to clip the result to.
            Defaults to `None` (no clipping).
        seed: Int or None. Defaults to `None`.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np, keras_adv
    >>> layer = keras_adv.layers.RandomLpNoise(0.1, seed=0)
    >>> x = np.full((2, 4), 0.5, "float32")
    >>> bool(np.all(np.asarray(layer(x)) == x))  # inference: identity
    True
    >>> noisy = np.asarray(layer(x, training=True))
    >>> bool(0 < np.abs(noisy - x).max() <= 0.1 + 1e-6)
    True

    Reference:
        Wong, Rice and Kolter, "Fast is better than free: Revisiting adversarial
        training", ICLR 2020,
        [arXiv:2001.03994](https://arxiv.org/abs/2001.03994) (uniform start); de
        Jorge et al., "Make Some Noise", NeurIPS 2022,
        [arXiv:2202.01181](https://arxiv.org/abs/2202.01181).
    """

    def __init__(
        self,
        eps: float,
        norm: Norm = "linf",
        distribution: Literal["uniform", "gaussian"] = "uniform",
        value_range: ValueRange | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.eps = _validation.check_number("eps", eps, minimum=0.0)
        self.distribution = _validation.check_choice(
            "distribution", distribution, set(DISTRIBUTIONS)
        )
        if value_range is not None:
            value_range = _validation.check_value_range(value_range)
        self.value_range = value_range
        self.ball = threat_models.get(
            norm, self.eps, value_range or (-1e30, 1e30)
        )
        self.norm = self.ball.norm
        if seed is not None:
            seed = _validation.check_int("seed", seed, minimum=0)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs: TensorLike, training: bool | None = False) -> Tensor:
        if not training or self.eps == 0.0:
            return inputs
        x = ops.cast(inputs, "float32")
        if self.value_range is not None:
            # Clipping inputs from another range (0..255 into (0, 1))
            # would replace them, not perturb them.
            x = _validation.after_checks(
                _validation.value_range_assertions(
                    x, self.value_range, "inputs"
                ),
                x,
            )
        if self.distribution == "uniform":
            noisy = self.ball.random_start(x, seed=self.seed_generator)
        else:
            sigma = self.eps / 2.0
            if self.norm == "l2":
                dims = 1
                for d in x.shape[1:]:
                    dims *= int(d)
                sigma = sigma / dims**0.5
            noise = keras.random.normal(
                ops.shape(x), stddev=sigma, seed=self.seed_generator
            )
            noisy = self.ball.project(x + noise, x)
        return ops.cast(noisy, inputs.dtype)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            eps=self.eps,
            norm=self.norm,
            distribution=self.distribution,
            value_range=None
            if self.value_range is None
            else list(self.value_range),
            seed=self.seed,
        )
        return config
