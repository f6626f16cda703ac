"""Conditional-VAE losses: Gaussian KL, reconstruction, beta warm-up.

The CVAE of a learned perturbation set (Wong and Kolter 2021) minimises,
per pair `(x, x~)`,

    -log p(x~ | z, x) + beta * KL(q(z | x, x~) || p(z | x)),

with diagonal Gaussian prior and posterior. The functions here return one
value per example (summed over every other axis); the model averages them.
"""

from collections.abc import Sequence
from typing import Literal

import numpy as np
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv._types import TensorLike

_PROB_EPS = 1e-7
RECONSTRUCTIONS = ("bernoulli", "gaussian")


def _per_example_sum(values: TensorLike) -> Tensor:
    values = ops.reshape(values, [ops.shape(values)[0], -1])
    return ops.sum(values, axis=1)


def gaussian_kl(
    mean_q: TensorLike,
    log_var_q: TensorLike,
    mean_p: TensorLike,
    log_var_p: TensorLike,
) -> Tensor:
    """KL(N(mean_q, var_q) || N(mean_p, var_p)) of diagonal Gaussians.

    Per example, summed over the latent dimensions:

        0.5 * sum(var_q / var_p + (mean_p - mean_q)^2 / var_p - 1
                  + log_var_p - log_var_q).

    Args:
        mean_q: Mean of q, shape `(batch, ...)`.
        log_var_q: Log-variance of q, same shape.
        mean_p: Mean of p, same shape.
        log_var_p: Log-variance of p, same shape.

    Returns:
        Float32 tensor `(batch,)`, >= 0, zero iff the Gaussians are equal.

    Example:

    >>> import numpy as np, keras_adv
    >>> zero = np.zeros((1, 2), "float32")
    >>> kl = keras_adv.losses.gaussian_kl(zero + 1.0, zero, zero, zero)
    >>> float(kl[0])  # 0.5 * (1^2 + 1^2)
    1.0
    """
    mean_q, log_var_q, mean_p, log_var_p = (
        ops.cast(t, "float32") for t in (mean_q, log_var_q, mean_p, log_var_p)
    )
    inv_var_p = ops.exp(-log_var_p)
    terms = (
        ops.exp(log_var_q - log_var_p)
        + ops.square(mean_p - mean_q) * inv_var_p
        - 1.0
        + log_var_p
        - log_var_q
    )
    return 0.5 * _per_example_sum(terms)


def bernoulli_reconstruction(x_true: TensorLike, x_pred: TensorLike) -> Tensor:
    """Summed binary cross-entropy `-log p(x_true | x_pred)` per example.

    `x_pred` holds Bernoulli means in `[0, 1]` (a sigmoid output), clipped
    to `[1e-7, 1 - 1e-7]`; `x_true` may be any value in `[0, 1]`:

        -sum(x_true * log(x_pred) + (1 - x_true) * log(1 - x_pred)).

    Example:

    >>> import numpy as np, keras_adv
    >>> x = np.full((1, 2), 0.5, "float32")
    >>> round(float(keras_adv.losses.bernoulli_reconstruction(x, x)[0]), 4)
    1.3863
    """
    x_true = ops.cast(x_true, "float32")
    x_pred = ops.clip(ops.cast(x_pred, "float32"), _PROB_EPS, 1.0 - _PROB_EPS)
    bce = -(x_true * ops.log(x_pred) + (1.0 - x_true) * ops.log(1.0 - x_pred))
    return _per_example_sum(bce)


def gaussian_reconstruction(x_true: TensorLike, x_pred: TensorLike) -> Tensor:
    """Summed squared error `sum((x_true - x_pred)^2)` per example.

    The negative log-likelihood of a Gaussian decoder with fixed variance
    1/2, up to a constant (the reference code's "gaussian" distribution).

    Example:

    >>> import numpy as np, keras_adv
    >>> a, b = np.zeros((1, 2), "float32"), np.ones((1, 2), "float32")
    >>> float(keras_adv.losses.gaussian_reconstruction(a, 3 * b)[0])
    18.0
    """
    diff = ops.cast(x_true, "float32") - ops.cast(x_pred, "float32")
    return _per_example_sum(ops.square(diff))


def reconstruction_loss(
    x_true: TensorLike,
    x_pred: TensorLike,
    distribution: Literal["bernoulli", "gaussian"] = "bernoulli",
) -> Tensor:
    """The reconstruction term for `distribution` ("bernoulli"/"gaussian")."""
    distribution = _validation.check_choice(
        "reconstruction", distribution, set(RECONSTRUCTIONS)
    )
    if distribution == "bernoulli":
        return bernoulli_reconstruction(x_true, x_pred)
    return gaussian_reconstruction(x_true, x_pred)


@register
class BetaSchedule:
    """A piecewise-linear schedule of the KL weight beta over train steps.

    `schedule(step)` interpolates linearly between `(boundaries[i],
    values[i])` and is constant before the first and after the last
    boundary. It is evaluated inside the train step from the optimizer's
    iteration counter (a variable), so beta changes every step without
    retracing. The reference MNIST warm-up, in epochs of 469 steps, is
    `BetaSchedule([0, 5 * 469, 20 * 469], [0.0, 1e-3, 1e-2])`.

    Args:
        boundaries: Increasing list of step numbers (ints >= 0).
        values: List of floats >= 0, one per boundary.

    Example:

    >>> import keras_adv
    >>> schedule = keras_adv.losses.BetaSchedule([0, 10], [0.0, 1.0])
    >>> [round(float(schedule(s)), 2) for s in (0, 5, 10, 20)]
    [0.0, 0.5, 1.0, 1.0]

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450) (beta schedules of
        the reference configurations); Bowman et al., "Generating Sentences from
        a Continuous Space", 2016,
        [arXiv:1511.06349](https://arxiv.org/abs/1511.06349) (KL annealing).
    """

    def __init__(
        self, boundaries: Sequence[float], values: Sequence[float]
    ) -> None:
        if not isinstance(boundaries, list | tuple) or not boundaries:
            raise ValueError(
                _validation.invalid(
                    "boundaries", "a non-empty list of steps", boundaries
                )
            )
        boundaries = [
            _validation.check_number("boundaries", b, minimum=0.0)
            for b in boundaries
        ]
        if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            raise ValueError(
                _validation.invalid(
                    "boundaries", "strictly increasing steps", boundaries
                )
            )
        if not isinstance(values, list | tuple) or len(values) != len(
            boundaries
        ):
            raise ValueError(
                _validation.invalid(
                    "values",
                    f"a list of {len(boundaries)} numbers (one per boundary)",
                    values,
                )
            )
        self.boundaries = boundaries
        self.values = [
            _validation.check_number("values", v, minimum=0.0) for v in values
        ]

    def __call__(self, step: int | TensorLike) -> Tensor:
        """Beta at `step` (a number or scalar tensor), float32 scalar."""
        step = ops.cast(step, "float32")
        b = np.asarray(self.boundaries, "float32")
        v = np.asarray(self.values, "float32")
        if len(b) == 1:
            return ops.convert_to_tensor(v[0]) + 0.0 * step
        step = ops.clip(step, float(b[0]), float(b[-1]))
        index = ops.sum(ops.cast(step >= b[1:-1], "int32")) if len(b) > 2 else 0
        index = ops.convert_to_tensor(index, "int32")
        b0, b1 = ops.take(b, index), ops.take(b, index + 1)
        v0, v1 = ops.take(v, index), ops.take(v, index + 1)
        return v0 + (step - b0) / (b1 - b0) * (v1 - v0)

    def get_config(self) -> Config:
        return {
            "boundaries": list(self.boundaries),
            "values": list(self.values),
        }

    @classmethod
    def from_config(cls, config: Config) -> "BetaSchedule":
        return cls(**config)

    def __repr__(self) -> str:
        return (
            f"BetaSchedule(boundaries={self.boundaries}, values={self.values})"
        )
