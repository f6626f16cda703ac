"""`GaussianSampling`: the reparameterisation trick, seeded and stable."""

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Shape
from keras_adv._types import Tensor
from keras_adv._types import TensorLike

DEFAULT_LOG_VAR_RANGE = (-10.0, 10.0)


def check_log_var_range(log_var_range: Sequence[float]) -> tuple[float, float]:
    """Validates a `(low, high)` log-variance range; returns floats."""
    try:
        low, high = log_var_range
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise ValueError(
            _validation.invalid(
                "log_var_range", "a pair (low, high)", log_var_range
            )
        ) from None
    if not low < high:
        raise ValueError(
            _validation.invalid(
                "log_var_range", "(low, high) with low < high", log_var_range
            )
        )
    return (low, high)


def clamp_log_var(
    log_var: TensorLike,
    log_var_range: Sequence[float] = DEFAULT_LOG_VAR_RANGE,
) -> Tensor:
    """Clips a log-variance to `log_var_range` (float32).

    `exp(0.5 * log_var)` then lies in `[exp(low / 2), exp(high / 2)]`
    (about `[0.0067, 148]` for the default `(-10, 10)`): a diverging
    encoder cannot produce an infinite or zero standard deviation.
    """
    low, high = log_var_range
    return ops.clip(ops.cast(log_var, "float32"), low, high)


def _static_shape(value: Any) -> Shape:
    """The static shape of a tensor or array (None where unknown)."""
    shape = getattr(value, "shape", None)
    return tuple(np.shape(value) if shape is None else shape)


def _check_same_shape(
    argument: str,
    names: tuple[str, str],
    shapes: Sequence[Sequence[int | None]],
) -> None:
    """Raises naming both shapes unless they can be one shape.

    Without it a broadcast (mean `(2, 1)`, log-variance `(2, 4)`) would
    sample the wrong shape, and a mismatch would fail deep in an op.
    """
    shapes = [tuple(shape) for shape in shapes]
    same = len(shapes[0]) == len(shapes[1]) and all(
        a is None or b is None or a == b for a, b in zip(*shapes, strict=True)
    )
    if not same:
        raise ValueError(
            _validation.invalid(
                argument,
                f"{names[0]} and {names[1]} of the same shape",
                f"{names[0]} of shape {shapes[0]} and {names[1]} of shape "
                f"{shapes[1]}",
            )
        )


@register
class GaussianSampling(keras.layers.Layer):
    """Draws `z = mean + exp(log_var / 2) * noise`, `noise ~ N(0, I)`.

    The reparameterisation trick of a variational autoencoder: the draw is
    a differentiable function of `mean` and `log_var`. The log-variance is
    clipped to `log_var_range` first, so the standard deviation stays in
    `[exp(low / 2), exp(high / 2)]`. The layer samples in training and in
    inference (a VAE samples in both); pass `noise` to `call` to use a
    given draw instead (e.g. a latent perturbation `u`).

    Args:
        log_var_range: Pair `(low, high)`, the range the log-variance is
            clipped to. Defaults to `(-10.0, 10.0)`.
        seed: Int or None, seed of the noise. Defaults to `None`.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np, keras_adv
    >>> layer = keras_adv.layers.GaussianSampling(seed=0)
    >>> mean, log_var = np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32")
    >>> tuple(layer([mean, log_var]).shape)
    (2, 3)
    >>> noise = np.ones((2, 3), "float32")
    >>> np.asarray(layer([mean + 1, np.log(4.0) + log_var], noise=noise))[0]
    array([3., 3., 3.], dtype=float32)

    Reference:
        Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014,
        [arXiv:1312.6114](https://arxiv.org/abs/1312.6114).
    """

    def __init__(
        self,
        log_var_range: Sequence[float] = DEFAULT_LOG_VAR_RANGE,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.log_var_range = check_log_var_range(log_var_range)
        if seed is not None:
            seed = _validation.check_int("seed", seed, minimum=0)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(
        self, inputs: Sequence[TensorLike], noise: TensorLike | None = None
    ) -> Tensor:
        if not isinstance(inputs, list | tuple) or len(inputs) != 2:
            raise ValueError(
                _validation.invalid(
                    "inputs", "a pair [mean, log_var]", type(inputs).__name__
                )
            )
        mean_shape = _static_shape(inputs[0])
        _check_same_shape(
            "inputs",
            ("mean", "log_var"),
            (mean_shape, _static_shape(inputs[1])),
        )
        if noise is not None:
            _check_same_shape(
                "noise", ("mean", "noise"), (mean_shape, _static_shape(noise))
            )
        mean = ops.cast(inputs[0], "float32")
        log_var = clamp_log_var(inputs[1], self.log_var_range)
        if noise is None:
            noise = keras.random.normal(
                ops.shape(mean), seed=self.seed_generator
            )
        return mean + ops.exp(0.5 * log_var) * ops.cast(noise, "float32")

    def compute_output_shape(self, input_shape: Sequence[Shape]) -> Shape:
        _check_same_shape("inputs", ("mean", "log_var"), input_shape)
        return input_shape[0]

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(log_var_range=list(self.log_var_range), seed=self.seed)
        return config
