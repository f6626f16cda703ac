"""The bound engine: a model read into bound rules, compiled per setting.

`Bounder` holds a model's `_plan.Plan` (its layers as bound rules, in
graph order) and one compiled function per (bound, norm, method)
setting; `bounder(model, method)` returns the one per model, kept in a
weak cache so a model is never kept alive by it. The public functions of
`_bounds` check their arguments on the host and call these compiled
functions; `keras_adv.training`'s verified objectives call them inside
the train step.
"""

import math
import weakref
from collections.abc import Callable
from typing import Any
from typing import cast

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv._types import Interval
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv._types import ValueRange
from keras_adv.certification import _layers
from keras_adv.certification import _plan

NORMS = ("linf", "l2")
METHODS = ("ibp", "crown_ibp", "crown")

# One bounder (the model read into rules, and its compiled functions) per
# model, weakly: the cache never keeps a model alive.
BOUNDERS: weakref.WeakKeyDictionary[keras.Model, "Bounder"] = (
    weakref.WeakKeyDictionary()
)


class Bounder:
    """A model read into bound rules, with its compiled functions."""

    def __init__(self, model: keras.Model) -> None:
        self.plan = _plan.Plan(model)
        self.name = model.name
        self.input_shape = tuple(model.inputs[0].shape[1:])
        self.classes = model.outputs[0].shape[-1]
        self.functions: dict[tuple[Any, ...], Callable[..., Any]] = {}

    # ------------------------------------------------------------- checks
    def check_crown(self, method: str) -> None:
        for node in self.plan.nodes:
            if not node.rule.crown:
                raise _layers.unsupported(
                    node.rule.layer,
                    f"method={method!r} has no linear relaxation for it "
                    f"({getattr(node.rule, 'reason', 'no rule')}); "
                    "method='ibp' bounds it",
                )

    def check_classes(self) -> None:
        if self.classes is None or self.classes < 2:
            raise ValueError(
                f"Margin bounds need a classifier with outputs (batch, "
                f"classes >= 2). Received: model {self.name!r} with output "
                f"classes={self.classes}."
            )

    # ------------------------------------------------------ graph bodies
    def box(
        self, x: Tensor, eps: Tensor, value_range: ValueRange | None
    ) -> Interval:
        """The input interval: the L-inf box of radius eps, clipped."""
        eps = _per_sample(eps, x)
        lower, upper = x - eps, x + eps
        if value_range is not None:
            lower = ops.clip(lower, *value_range)
            upper = ops.clip(upper, *value_range)
        return lower, upper

    def propagate(
        self, x: Tensor, eps: Tensor, norm: Norm, value_range: ValueRange | None
    ) -> dict[int, Interval]:
        """Dict `tensor id -> (lower, upper)` for every node (IBP).

        For an L2 ball, the tensors that are the input up to reshapes and
        elementwise affine maps (`Flatten`, `Reshape`, `Rescaling`,
        `Normalization`, `BatchNormalization`) are followed exactly, as
        their value at the centre and their per-coordinate squared scale,
        so that the first `Dense` or convolution after them is bounded over
        the (scaled) ball itself rather than over the L-inf box around it.
        """
        bounds = {0: self.box(x, eps, value_range)}
        exact: dict[int, tuple[Tensor, Tensor | None]] = (
            {0: (x, None)} if norm == "l2" else {}
        )
        for node in self.plan.nodes:
            rule = node.rule
            lower, upper = rule.interval([bounds[i] for i in node.inputs])
            if len(node.inputs) == 1 and node.inputs[0] in exact:
                centre, scale_sq = exact[node.inputs[0]]
                if isinstance(rule, _layers.Dense | _layers.Convolution):
                    lower, upper = _l2_affine(
                        rule, centre, scale_sq, eps, lower, upper
                    )
                elif isinstance(rule, _layers.Flatten | _layers.Reshape):
                    exact[node.output] = (
                        rule.linear(centre),
                        None if scale_sq is None else rule.linear(scale_sq),
                    )
                elif isinstance(rule, _layers.Elementwise):
                    scale, shift = rule.scale_shift(len(centre.shape))
                    squared = ops.square(scale)
                    if scale_sq is not None:
                        squared = squared * scale_sq
                    exact[node.output] = (
                        centre * scale + shift,
                        ops.broadcast_to(squared, ops.shape(centre)),
                    )
            bounds[node.output] = (lower, upper)
        return bounds

    def interval(
        self, x: Tensor, eps: Tensor, norm: Norm, value_range: ValueRange | None
    ) -> Interval:
        return self.propagate(x, eps, norm, value_range)[self.plan.output]

    def margins(
        self,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        method: str,
        norm: Norm,
        value_range: ValueRange | None,
    ) -> Tensor:
        """Lower bounds of `z_y - z_j`, `(batch, classes)`; 0 at `j = y`."""
        bounds = self.propagate(x, eps, norm, value_range)
        lower = self.ibp_margins(bounds, y)
        if method != "ibp":
            if method == "crown":
                bounds = self._tighten(bounds, x, eps, norm, value_range)
            crown = self.crown_margins(bounds, x, y, eps, norm, value_range)
            # Both are sound: keep the larger lower bound.
            lower = ops.maximum(lower, crown)
        return self.zero_true_class(lower, y)

    def zero_true_class(self, margins: Tensor, y: Tensor) -> Tensor:
        """`margins` with the column of `y` (the margin `z_y - z_y`) at 0."""
        return ops.where(ops.one_hot(y, self.classes) > 0, 0.0, margins)

    def crown_margins(
        self,
        bounds: dict[int, Interval],
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        norm: Norm,
        value_range: ValueRange | None,
    ) -> Tensor:
        """CROWN margins from the node `bounds`: one backward pass.

        Each ReLU is relaxed on the interval `bounds` gives its input (IBP
        intervals: CROWN-IBP). Differentiable in the weights, which every
        rule reads when called (verified training uses it in its tape).
        """
        one_hot = ops.one_hot(y, self.classes)
        spec = ops.expand_dims(one_hot, 1) - ops.expand_dims(
            ops.eye(self.classes), 0
        )
        a, constant = self._backward(spec, self.plan.output, bounds)
        return self._concretize(a, constant, x, eps, norm, value_range)

    def ibp_margins(self, bounds: dict[int, Interval], y: Tensor) -> Tensor:
        """IBP margins, the last Dense layer folded into the margin.

        Bounding `(w_y - w_j) . h + b_y - b_j` over the interval of `h`
        is tighter than subtracting the logits' intervals (Gowal et al.
        2018, "elision of the last layer").
        """
        last = self.plan.nodes[-1] if self.plan.nodes else None
        if (
            last is not None
            and last.output == self.plan.output
            and isinstance(last.rule, _layers.Dense)
            and len(bounds[last.inputs[0]][0].shape) == 2
        ):
            lower, upper = bounds[last.inputs[0]]
            centre, radius = (lower + upper) / 2.0, (upper - lower) / 2.0
            weights = ops.transpose(last.rule.kernel())
            diff = ops.expand_dims(ops.take(weights, y, axis=0), 1) - weights
            margin = ops.einsum("bkd,bd->bk", diff, centre) - ops.einsum(
                "bkd,bd->bk", ops.abs(diff), radius
            )
            bias = last.rule.bias()
            if bias is not None:
                margin += ops.expand_dims(ops.take(bias, y), 1) - bias
            return margin
        lower, upper = bounds[self.plan.output]
        true_lower = ops.take_along_axis(lower, ops.expand_dims(y, 1), axis=1)
        return true_lower - upper

    def _backward(
        self, a: Tensor, start: int, bounds: dict[int, Interval]
    ) -> tuple[Tensor | None, Tensor | None]:
        """Pulls `a . z_start` back to the input: `(a_input, constant)`."""
        pending = {start: a}
        constant: Tensor | None = None
        for node in reversed(self.plan.nodes):
            a_out = pending.pop(node.output, None)
            if a_out is None:
                continue
            pulled, const = node.rule.backward(
                a_out, [bounds[i] for i in node.inputs]
            )
            if const is not None:
                constant = const if constant is None else constant + const
            for i, a_in in zip(node.inputs, pulled):
                pending[i] = pending[i] + a_in if i in pending else a_in
        return pending.get(0), constant

    def _concretize(
        self,
        a: Tensor | None,
        constant: Tensor | None,
        x: Tensor,
        eps: Tensor,
        norm: Norm,
        value_range: ValueRange | None,
    ) -> Tensor:
        """The minimum of `a . x + constant` over the input set."""
        batch = ops.shape(x)[0]
        if a is None:  # the output does not depend on the input
            return 0.0 if constant is None else constant
        lower, upper = self.box(x, eps, value_range)
        flat = ops.reshape(a, (batch, ops.shape(a)[1], -1))
        centre = ops.reshape((lower + upper) / 2.0, (batch, -1))
        radius = ops.reshape((upper - lower) / 2.0, (batch, -1))
        bound = ops.einsum("bsn,bn->bs", flat, centre) - ops.einsum(
            "bsn,bn->bs", ops.abs(flat), radius
        )
        if norm == "l2":
            # The L2 ball, without the value range: also sound, often
            # tighter than its bounding box.
            centre = ops.einsum("bsn,bn->bs", flat, ops.reshape(x, (batch, -1)))
            dual = ops.sqrt(ops.sum(ops.square(flat), axis=-1))
            ball = centre - ops.reshape(eps, (-1, 1)) * dual
            bound = ops.maximum(bound, ball)
        return bound if constant is None else bound + constant

    def _tighten(
        self,
        bounds: dict[int, Interval],
        x: Tensor,
        eps: Tensor,
        norm: Norm,
        value_range: ValueRange | None,
    ) -> dict[int, Interval]:
        """CROWN bounds for every ReLU's input, intersected with IBP's."""
        bounds = dict(bounds)
        for node in self.plan.nodes:
            if not isinstance(node.rule, _layers.LeakyReLU):
                continue
            pre = node.inputs[0]
            lower, upper = bounds[pre]
            shape = tuple(lower.shape[1:])
            size = math.prod(shape)
            eye = ops.eye(size)
            spec = ops.reshape(
                ops.concatenate([eye, -eye], axis=0), (1, 2 * size) + shape
            )
            spec = ops.broadcast_to(spec, (ops.shape(x)[0], 2 * size) + shape)
            a, constant = self._backward(spec, pre, bounds)
            found = self._concretize(a, constant, x, eps, norm, value_range)
            new_lower = ops.reshape(found[:, :size], (-1,) + shape)
            new_upper = -ops.reshape(found[:, size:], (-1,) + shape)
            bounds[pre] = (
                ops.maximum(lower, new_lower),
                ops.minimum(upper, new_upper),
            )
        return bounds

    # ----------------------------------------------------------- compiled
    def function(
        self,
        kind: str,
        method: str | None,
        norm: Norm,
        value_range: ValueRange | None,
    ) -> Callable[..., Any]:
        """The compiled function of one setting, traced once."""
        key = (kind, method, norm, value_range)
        fn = self.functions.get(key)
        if fn is not None:
            return fn
        run: Callable[..., Any]
        if kind == "interval":

            def run_interval(x: Tensor, eps: Tensor) -> Interval:
                return self.interval(x, eps, norm, value_range)

            run = run_interval
        else:

            def run_margins(x: Tensor, y: Tensor, eps: Tensor) -> Tensor:
                return self.margins(
                    x, y, eps, cast(str, method), norm, value_range
                )

            run = run_margins
        fn = tf.function(run, reduce_retracing=True, autograph=False)
        self.functions[key] = fn
        return fn


def _per_sample(eps: Tensor, x: Tensor) -> Tensor:
    """Eps broadcasting against `x`: a scalar, or `(batch, 1, ..., 1)`."""
    if len(eps.shape) == 0:
        return eps
    return ops.reshape(eps, (-1,) + (1,) * (len(x.shape) - 1))


def _l2_affine(
    rule: _layers.Dense | _layers.Convolution,
    centre: Tensor,
    scale_sq: Tensor | None,
    eps: Tensor,
    lower: Tensor,
    upper: Tensor,
) -> Interval:
    """A Dense/Conv layer on the L2 ball, seen through `scale_sq`.

    Its input is `centre + s * delta` with `||delta||_2 <= eps` and `s**2
    = scale_sq` per coordinate (None: `s = 1`), so each output moves by at
    most `eps * sqrt(sum_i w_i**2 s_i**2)` (Cauchy-Schwarz, the dual norm);
    intersected with the interval bounds, both sound.
    """
    if isinstance(rule, _layers.Dense):
        norms = rule.l2_radius(scale_sq)
    else:
        norms = rule.l2_radius_for(centre, scale_sq)
    middle = rule.linear(centre)
    offset = rule.offset()
    if offset is not None:
        middle = middle + offset
    radius = _per_sample(eps, middle) * norms
    return (
        ops.maximum(lower, middle - radius),
        ops.minimum(upper, middle + radius),
    )


def bounder(model: keras.Model, method: str | None = None) -> Bounder:
    if not isinstance(model, keras.Model):
        raise TypeError(_validation.invalid("model", "a keras.Model", model))
    bounder = BOUNDERS.get(model)
    if bounder is None:
        bounder = Bounder(model)
        BOUNDERS[model] = bounder
    if method is not None and method != "ibp":
        bounder.check_crown(method)
    return bounder
