"""Lp-ball threat models: where an adversary may move an input.

A threat model is the set

    S(x) = {x' : ||x' - x||_p <= eps,  low <= x' <= high}

around a clean input `x`. Attacks use four operations of it: `project`
(the Euclidean projection onto the ball, then onto the value range),
`random_start` (a uniform draw from the ball), `ascent_direction` (the
steepest-ascent direction of a gradient under the norm: the maximiser of
<g, d> over ||d||_p <= 1) and `distance` (||x' - x||_p per sample).

`eps` may be a Python float, a per-sample tensor of shape `(batch,)`, or a
`tf.Variable`/`keras.Variable` that a callback changes between calls; the
methods read it at run time, so changing it does not retrace a
`tf.function`.
"""

from collections.abc import Callable
from typing import TypeVar

from keras import ops

from keras_adv import _random
from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import Seed
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange

_TINY = 1e-12

_ThreatModelT = TypeVar("_ThreatModelT", bound="ThreatModel")


def _reduce_axes(x: TensorLike) -> list[int]:
    return list(range(1, len(x.shape)))


def broadcast_per_sample(value: Eps, x: TensorLike) -> Tensor:
    """Casts `value` to the dtype of `x` and makes it broadcast against it.

    A scalar stays a scalar; a vector of shape `(batch,)` becomes
    `(batch, 1, ..., 1)` with the rank of `x`.
    """
    dtype = x.dtype if "float" in str(x.dtype) else "float32"
    value = ops.cast(ops.convert_to_tensor(value), dtype)
    if len(value.shape) == 1:
        value = ops.reshape(value, [-1] + [1] * (len(x.shape) - 1))
    elif len(value.shape) > 1:
        raise ValueError(
            _validation.invalid(
                "eps",
                "a scalar or a per-sample vector of shape (batch,)",
                tuple(value.shape),
            )
        )
    return value


class ThreatModel:
    """Base class of norm-ball threat models.

    Subclasses set `norm` and implement `_project_delta`, `_sample_delta`,
    `ascent_direction` and `norm_of`.

    Args:
        eps: Float >= 0, per-sample tensor of shape `(batch,)` or a variable:
            radius of the ball in input units. Defaults to `0.3`.
        value_range: Pair `(low, high)` with `low < high`: the valid input
            range. Defaults to `(0.0, 1.0)`.
    """

    # Set by every subclass ("linf", "l2", ...); None on this base only.
    norm: str = None  # type: ignore[assignment]

    # Implemented by subclasses (see above).
    ascent_direction: Callable[[TensorLike], Tensor]
    norm_of: Callable[[TensorLike], Tensor]
    _project_delta: Callable[[TensorLike, Tensor], Tensor]
    _sample_delta: Callable[[TensorLike, Tensor, Seed | None], Tensor]

    def __init__(
        self, eps: Eps = 0.3, value_range: ValueRange = (0.0, 1.0)
    ) -> None:
        self.eps = eps
        self.value_range = _validation.check_value_range(value_range)

    @property
    def eps(self) -> Eps:
        return self._eps

    @eps.setter
    def eps(self, value: Eps) -> None:
        self._eps = _validation.check_eps(value)

    def eps_tensor(self, x: TensorLike, eps: Eps | None = None) -> Tensor:
        """Returns eps (or the override) as float32, broadcastable to `x`."""
        eps = self._eps if eps is None else eps
        return broadcast_per_sample(eps, x)

    def clip(self, x: TensorLike) -> Tensor:
        """Clips `x` to the value range."""
        low, high = self.value_range
        return ops.clip(x, low, high)

    def project(
        self, x_adv: TensorLike, x: TensorLike, eps: Eps | None = None
    ) -> Tensor:
        """Projects `x_adv` onto the ball around `x`, then the value range.

        Clipping to the box after the ball projection never leaves the ball,
        because `x` lies in the box: each coordinate only moves towards `x`.

        Args:
            x_adv: Float tensor, the candidate point.
            x: Float tensor of the same shape, the centre of the ball.
            eps: Optional override of `self.eps`.

        Returns:
            A tensor of the shape of `x` inside the ball and the value range.
        """
        delta = self._project_delta(x_adv - x, self.eps_tensor(x, eps))
        return self.clip(x + delta)

    def random_start(
        self, x: TensorLike, seed: Seed | None = None, eps: Eps | None = None
    ) -> Tensor:
        """Returns `x` plus a uniform draw from the ball, clipped to range.

        Args:
            x: Float tensor, the centre of the ball.
            seed: A `keras.random.SeedGenerator`, an int, or an int tensor of
                shape `(2,)` (stateless seed, for use inside graphs).
            eps: Optional override of `self.eps`.
        """
        delta = self._sample_delta(x, self.eps_tensor(x, eps), seed)
        return self.clip(x + delta)

    def distance(self, x: TensorLike, x_adv: TensorLike) -> Tensor:
        """Returns `||x_adv - x||_p` per sample, shape `(batch,)`."""
        return self.norm_of(ops.cast(x_adv, "float32") - ops.cast(x, "float32"))

    def contains(
        self,
        x: TensorLike,
        x_adv: TensorLike,
        eps: Eps | None = None,
        tol: float = 1e-6,
    ) -> Tensor:
        """Boolean `(batch,)`: inside the ball (with `tol`) and the range."""
        low, high = self.value_range
        radius = self.eps_tensor(x, eps)
        radius = ops.reshape(radius, [-1]) if len(radius.shape) else radius
        in_ball = self.distance(x, x_adv) <= radius + tol
        axes = _reduce_axes(x_adv)
        in_range = ops.logical_and(
            ops.all(x_adv >= low - tol, axis=axes),
            ops.all(x_adv <= high + tol, axis=axes),
        )
        return ops.logical_and(in_ball, in_range)

    def get_config(self) -> Config:
        eps = self._eps
        if _validation.is_variable(eps):
            eps = float(ops.convert_to_numpy(eps))
        elif not isinstance(eps, float):
            eps = ops.convert_to_numpy(eps).tolist()
        return {"eps": eps, "value_range": list(self.value_range)}

    @classmethod
    def from_config(cls: type[_ThreatModelT], config: Config) -> _ThreatModelT:
        return cls(**config)

    def __repr__(self) -> str:
        config = self.get_config()
        return (
            f"{type(self).__name__}(eps={config['eps']}, "
            f"value_range={tuple(config['value_range'])})"
        )


@register
class LinfBall(ThreatModel):
    """The L-infinity ball `{x' : max_i |x'_i - x_i| <= eps}` in the range.

    The steepest-ascent direction under the L-infinity norm is `sign(g)`
    (the FGSM/PGD step of Goodfellow et al. 2015 and Madry et al. 2018);
    projection clips every coordinate to `[x - eps, x + eps]`; the random
    start is uniform in the cube.

    Args:
        eps: Float >= 0, per-sample tensor of shape `(batch,)` or a variable:
            radius of the ball in input units. Defaults to `0.3`.
        value_range: Pair `(low, high)`: valid input range. Defaults to
            `(0.0, 1.0)`.

    Example:

    >>> import numpy as np, keras_adv
    >>> ball = keras_adv.threat_models.LinfBall(eps=0.1)
    >>> x = np.full((1, 3), 0.5, "float32")
    >>> np.asarray(ball.project(x + 1.0, x))
    array([[0.6, 0.6, 0.6]], dtype=float32)

    Reference:
        Madry et al., "Towards Deep Learning Models Resistant to Adversarial
        Attacks", ICLR 2018,
        [arXiv:1706.06083](https://arxiv.org/abs/1706.06083).
    """

    norm = "linf"

    def _project_delta(self, delta: TensorLike, eps: Tensor) -> Tensor:
        return ops.clip(delta, -eps, eps)

    def _sample_delta(
        self, x: TensorLike, eps: Tensor, seed: Seed | None
    ) -> Tensor:
        return _random.random_uniform(ops.shape(x), seed, -1.0, 1.0) * eps

    def ascent_direction(self, grad: TensorLike) -> Tensor:
        """`sign(grad)`: maximises `<grad, d>` over `||d||_inf <= 1`."""
        return ops.sign(grad)

    def norm_of(self, delta: TensorLike) -> Tensor:
        """Per-sample L-infinity norm, shape `(batch,)`."""
        return ops.max(ops.abs(delta), axis=_reduce_axes(delta))


@register
class L2Ball(ThreatModel):
    """The L2 ball `{x' : ||x' - x||_2 <= eps}` intersected with the range.

    The steepest-ascent direction under the L2 norm is `g / ||g||_2`;
    projection rescales `delta` to norm `min(||delta||, eps)`; the random
    start is uniform in the ball (direction from a normal draw, radius
    `eps * u^(1/d)`).

    Args:
        eps: Float >= 0, per-sample tensor of shape `(batch,)` or a variable:
            radius of the ball in input units. Defaults to `0.3`.
        value_range: Pair `(low, high)`: valid input range. Defaults to
            `(0.0, 1.0)`.

    Example:

    >>> import numpy as np, keras_adv
    >>> ball = keras_adv.threat_models.L2Ball(eps=1.0, value_range=(-9, 9))
    >>> x = np.zeros((1, 2), "float32")
    >>> np.asarray(ball.project(x + np.float32([[3.0, 4.0]]), x)).round(4)
    array([[0.6, 0.8]], dtype=float32)

    Reference:
        Madry et al., "Towards Deep Learning Models Resistant to Adversarial
        Attacks", ICLR 2018,
        [arXiv:1706.06083](https://arxiv.org/abs/1706.06083).
    """

    norm = "l2"

    def _project_delta(self, delta: TensorLike, eps: Tensor) -> Tensor:
        norm = self._norm_keepdims(delta)
        factor = ops.minimum(1.0, eps / ops.maximum(norm, _TINY))
        return delta * factor

    def _sample_delta(
        self, x: TensorLike, eps: Tensor, seed: Seed | None
    ) -> Tensor:
        seed_dir, seed_radius = _random.split_seed(seed)
        direction = _random.random_normal(ops.shape(x), seed_dir)
        direction = direction / ops.maximum(
            self._norm_keepdims(direction), _TINY
        )
        dims = 1
        for d in x.shape[1:]:
            dims *= d
        batch_shape = [ops.shape(x)[0]] + [1] * (len(x.shape) - 1)
        radius = ops.power(
            _random.random_uniform(batch_shape, seed_radius), 1.0 / dims
        )
        return direction * radius * eps

    def ascent_direction(self, grad: TensorLike) -> Tensor:
        """`grad / ||grad||_2` per sample (zero where the gradient is zero)."""
        return grad / ops.maximum(self._norm_keepdims(grad), _TINY)

    def norm_of(self, delta: TensorLike) -> Tensor:
        """Per-sample L2 norm, shape `(batch,)`."""
        return ops.sqrt(ops.sum(ops.square(delta), axis=_reduce_axes(delta)))

    def _norm_keepdims(self, delta: TensorLike) -> Tensor:
        return ops.sqrt(
            ops.sum(ops.square(delta), axis=_reduce_axes(delta), keepdims=True)
        )


_NORMS: dict[str, type[ThreatModel]] = {"linf": LinfBall, "l2": L2Ball}


def get(
    norm: Norm, eps: Eps = 0.3, value_range: ValueRange = (0.0, 1.0)
) -> ThreatModel:
    """Returns the threat model for `norm` ("linf" or "l2").

    Args:
        norm: String, `"linf"` or `"l2"`.
        eps: Radius of the ball. Defaults to `0.3`.
        value_range: Valid input range. Defaults to `(0.0, 1.0)`.

    Raises:
        ValueError: for an unknown norm (including `np.inf`: use "linf").

    Example:

    >>> import keras_adv
    >>> keras_adv.threat_models.get("l2", eps=1.5)
    L2Ball(eps=1.5, value_range=(0.0, 1.0))
    """
    norm = _validation.check_choice("norm", norm, set(_NORMS))
    return _NORMS[norm](eps=eps, value_range=value_range)
