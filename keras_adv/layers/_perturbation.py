"""`PerturbationBound`: a generator head whose outputs lie in an Lp ball."""

from collections.abc import Sequence
from typing import Any
from typing import Literal

import keras
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Norm
from keras_adv._types import Shape
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange

MODES = ("tanh", "clip")
NORMS = ("linf", "l2")
_TINY = 1e-12


def _direction_and_length(raw: TensorLike) -> tuple[Tensor, Tensor]:
    """`(raw / ||raw||_2, ||raw||_2)` per sample, for any raw values.

    NaN counts as 0. The sample is divided by its largest magnitude `m`
    first, so values near the float32 limit keep their direction instead
    of squaring to inf; an infinite coordinate is the limit of a growing
    one (the direction is then the signs of the infinite coordinates and
    the length inf). `m` enters without gradient: both results are
    invariant to a common scale, so the gradient is the plain formula's.
    """
    axes = list(range(1, len(raw.shape)))
    raw = ops.where(ops.isnan(raw), 0.0, raw)
    scale = ops.stop_gradient(ops.max(ops.abs(raw), axis=axes, keepdims=True))
    unit = ops.where(
        ops.isinf(raw), ops.sign(raw), raw / ops.maximum(scale, _TINY)
    )
    unit_norm = ops.sqrt(ops.sum(ops.square(unit), axis=axes, keepdims=True))
    infinite = ops.isinf(scale)
    # inf * unit_norm would give NaN gradients (inf * 0) through tanh.
    length = ops.where(
        infinite, float("inf"), ops.where(infinite, 1.0, scale) * unit_norm
    )
    return unit / ops.maximum(unit_norm, _TINY), length


def bound_perturbation(
    raw: TensorLike,
    eps: float,
    norm: Norm = "linf",
    mode: Literal["tanh", "clip"] = "tanh",
) -> Tensor:
    """Maps raw values into the `norm` ball of radius `eps` (per sample).

    * `"linf"`, `"tanh"`: `eps * tanh(raw)` (every coordinate strictly in
      `(-eps, eps)`, smooth);
    * `"linf"`, `"clip"`: `clip(raw, -eps, eps)` (the clip trick of AdvGAN
      re-implementations; zero gradient outside the ball);
    * `"l2"`, `"tanh"`: `eps * tanh(||raw||) * raw / ||raw||` (the
      direction kept, the length squashed smoothly below `eps`);
    * `"l2"`, `"clip"`: `raw * min(1, eps / ||raw||)` (the projection).

    The result lies in the ball whatever `raw` holds: a NaN counts as 0,
    an infinite coordinate as the limit of a growing one (`+-eps` in
    L-inf; in L2 the sample's direction is the signs of its infinite
    coordinates, at length `eps`), and values near the float32 limit keep
    their direction (the L2 norm is computed without overflow).

    Args:
        raw: Float tensor `(batch, ...)`.
        eps: Float >= 0.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        mode: `"tanh"` or `"clip"`. Defaults to `"tanh"`.

    Returns:
        Float32 tensor of the shape of `raw`, each sample of norm <= eps.

    Example:

    >>> import numpy as np
    >>> from keras_adv.layers._perturbation import bound_perturbation
    >>> np.asarray(bound_perturbation(np.array([[3.0, 4.0]]), 1.0, "l2",
    ...                               "clip"))
    array([[0.6, 0.8]], dtype=float32)
    >>> np.asarray(bound_perturbation(np.array([[np.inf, 1.0, np.nan]]),
    ...                               1.0, "l2"))
    array([[1., 0., 0.]], dtype=float32)
    """
    raw = ops.cast(raw, "float32")
    if norm == "linf":
        raw = ops.where(ops.isnan(raw), 0.0, raw)
        if mode == "tanh":
            return eps * ops.tanh(raw)
        return ops.clip(raw, -eps, eps)
    direction, length = _direction_and_length(raw)
    if mode == "tanh":
        return eps * ops.tanh(length) * direction
    return ops.minimum(length, eps) * direction


@register
class PerturbationBound(keras.layers.Layer):
    """Maps a generator's raw outputs into an Lp ball; optionally adds them.

    The last layer of a perturbation generator (AdvGAN): whatever the
    network before it outputs (NaN and infinite values included), the
    layer's output is a valid perturbation (`||delta||_p <= eps` per
    sample), so the generator is an ordinary Keras model whose outputs are
    always inside the threat model.

    Called on one tensor `raw`, it returns the perturbation `delta` (see
    `bound_perturbation` for the four maps). Called on a pair `[x, raw]`,
    it returns the adversarial input `clip(x + delta, *value_range)`:
    clipping to the box after adding a perturbation inside the ball never
    leaves the ball, since every coordinate only moves towards `x` (which
    must lie in `value_range`: an in-graph check fails the call
    otherwise).

    `"tanh"` (the default) keeps gradients alive everywhere; `"clip"` is
    the clip trick of the public AdvGAN re-implementations (its gradient
    vanishes for raw values outside the ball).

    Args:
        eps: Float >= 0, radius of the ball.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        mode: `"tanh"` or `"clip"`. Defaults to `"tanh"`.
        value_range: Pair `(low, high)`, the range of `x + delta` in the
            two-input form. Defaults to `(0.0, 1.0)`.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np, keras_adv
    >>> layer = keras_adv.layers.PerturbationBound(0.3)
    >>> raw = np.array([[-10.0, 0.0, 10.0]], "float32")
    >>> np.asarray(layer(raw)).round(3)
    array([[-0.3,  0. ,  0.3]], dtype=float32)
    >>> x = np.array([[0.1, 0.5, 0.9]], "float32")
    >>> np.asarray(layer([x, raw])).round(3)  # clip(x + delta, 0, 1)
    array([[0. , 0.5, 1. ]], dtype=float32)

    Reference:
        Xiao et al., "Generating Adversarial Examples with Adversarial
        Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610).
    """

    def __init__(
        self,
        eps: float,
        norm: Norm = "linf",
        mode: Literal["tanh", "clip"] = "tanh",
        value_range: ValueRange = (0.0, 1.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.eps = _validation.check_number("eps", eps, minimum=0.0)
        self.norm = _validation.check_choice("norm", norm, set(NORMS))
        self.mode = _validation.check_choice("mode", mode, set(MODES))
        self.value_range = _validation.check_value_range(value_range)
        self.built = True

    def call(self, inputs: TensorLike | Sequence[TensorLike]) -> Tensor:
        if isinstance(inputs, list | tuple):
            if len(inputs) != 2:
                raise ValueError(
                    _validation.invalid(
                        "inputs", "raw outputs or a pair [x, raw]", inputs
                    )
                )
            x, raw = inputs
            # Clipping x from another range into value_range would move
            # it by more than the ball: x must lie in it.
            x = _validation.after_checks(
                _validation.value_range_assertions(x, self.value_range),
                ops.cast(x, "float32"),
            )
            delta = bound_perturbation(raw, self.eps, self.norm, self.mode)
            low, high = self.value_range
            x_adv = ops.clip(x + delta, low, high)
            return ops.cast(x_adv, self.compute_dtype)
        delta = bound_perturbation(inputs, self.eps, self.norm, self.mode)
        return ops.cast(delta, self.compute_dtype)

    def compute_output_shape(self, input_shape: Shape | list[Shape]) -> Shape:
        if isinstance(input_shape, list | tuple) and isinstance(
            input_shape[0], list | tuple
        ):
            return input_shape[1]
        return input_shape

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            eps=self.eps,
            norm=self.norm,
            mode=self.mode,
            value_range=list(self.value_range),
        )
        return config
