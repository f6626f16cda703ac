"""FAB, the Fast Adaptive Boundary attack, in AutoAttack's FAB-T setting.

FAB (Croce and Hein 2020) looks for the smallest L-inf or L2 perturbation
that changes the decision. Each iteration linearises the decision
boundary at the current iterate into a hyperplane and projects both the
iterate and the clean input onto that hyperplane intersected with the
value range (`projection_linf`, `projection_l2`: the heart of the attack,
pure functions tested on their own); the next iterate is a convex
combination of the two projections, extrapolated by `eta`, and every
success is followed by a backward step towards the clean input.
"""

import keras
from keras import ops

from keras_adv import _random
from keras_adv import _validation
from keras_adv._api import register
from keras_adv._outputs import sparse_labels
from keras_adv._types import Array
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange
from keras_adv.attacks._base import Attack
from keras_adv.attacks._logits import ModelLogits

#: Weights smaller than this (in absolute value) do not move a coordinate
#: (as in the reference: exact zeros for L-inf, 1e-8 for L2).
_ZERO_WEIGHT = {"linf": 0.0, "l2": 1e-8}
_TINY = 1e-12
#: Floor of the step lengths in the step-size rule alpha = a1 / (a1 + a0).
_MIN_STEP = 1e-8
#: "No success yet" as a norm.
_NO_SUCCESS = 1e10


def _flat(x: Tensor) -> Tensor:
    """`(batch, n)` view of `x`, with a static `n` when the shape allows."""
    size = 1
    for dim in x.shape[1:]:
        if dim is None:
            return ops.reshape(x, (ops.shape(x)[0], -1))
        size *= dim
    return ops.reshape(x, (-1, size))


def _norm(delta: Tensor, norm: str) -> Tensor:
    """Per-sample L-inf or L2 norm of a `(batch, n)` tensor."""
    if norm == "linf":
        return ops.max(ops.abs(delta), axis=-1)
    return ops.sqrt(ops.sum(ops.square(delta), axis=-1))


def hyperplane_box_step(
    points: Tensor,
    w: Tensor,
    offset: Tensor,
    value_range: ValueRange,
    norm: str,
) -> Tensor:
    """The minimal-norm step onto `{z : offset + <w, z - t> = 0}` in a box.

    Solves, for every row `t` of `points`,

        min ||d||_p  subject to  offset + <w, d> = 0,  low <= t + d <= high

    for p = inf or 2, where `offset = <w, t> - b` is the signed value of the
    affine function at `t`. The solution moves every coordinate against
    the sign of `offset * w_i`: `d_i = -s_i min(lam * r_i, room_i)`, with
    `r_i = 1` (L-inf) or `|w_i|` (L2) and `room_i` the distance from `t_i`
    to the box face in that direction. `lam` solves `h(lam) = |offset|`
    for the piecewise-linear, concave, non-decreasing

        h(lam) = sum_i |w_i| min(lam r_i, room_i),

    whose kinks are at `room_i / r_i`. Newton's method from `lam = 0` (the
    first step is the solution without the box) stays below the root,
    crosses at least one kink per step until it lands on the root's
    segment, where it is exact: it ends when a step crosses no kink.
    When the hyperplane misses the box (`h` never reaches `|offset|`), the
    step goes to the box corner closest to it.

    Args:
        points: Float tensor `(batch, n)`, inside the box.
        w: Float tensor `(batch, n)`, the normals.
        offset: Float tensor `(batch,)`, `<w, t> - b` per row.
        value_range: Pair `(low, high)`, the box.
        norm: `"linf"` or `"l2"`.

    Returns:
        Float32 tensor `(batch, n)`, the steps `d`.
    """
    low, high = value_range
    points = ops.cast(points, "float32")
    w = ops.cast(w, "float32")
    offset = ops.cast(offset, "float32")
    # Orient every hyperplane so that the points lie on its positive side:
    # the step must then decrease <w, z> by `gap` >= 0.
    side = ops.where(offset < 0.0, -1.0, 1.0)
    w = w * side[:, None]
    gap = offset * side
    abs_w = ops.abs(w)
    valid = abs_w > _ZERO_WEIGHT[norm]
    abs_w = ops.where(valid, abs_w, 0.0)
    room = ops.maximum(ops.where(w > 0.0, points - low, high - points), 0.0)
    rate = ops.ones_like(w) if norm == "linf" else abs_w
    kink = ops.where(valid, room / ops.maximum(rate, _TINY), float("inf"))
    slope_i = abs_w * rate  # d h / d lam while coordinate i is free
    full_i = abs_w * room  # its share of h once it is at the box face
    feasible = ops.sum(full_i, axis=-1) >= gap
    batch, size = ops.shape(w)[0], ops.shape(w)[1]

    def newton(
        i: Tensor, lam: Tensor, last_slope: Tensor, done: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        free = kink > lam[:, None]
        h = ops.sum(ops.where(free, lam[:, None] * slope_i, full_i), axis=-1)
        slope = ops.sum(ops.where(free, slope_i, 0.0), axis=-1)
        # Converged: the last step stayed on one segment (so it is exact),
        # the root is reached (rounding), or no free coordinate is left.
        done = done | (slope == last_slope) | (h >= gap) | (slope <= 0.0)
        step = ops.where(done, 0.0, (gap - h) / ops.maximum(slope, _TINY))
        return i + 1, lam + step, slope, done

    _, lam, _, _ = ops.while_loop(
        lambda i, lam, last_slope, done: ops.logical_and(
            i <= size, ops.logical_not(ops.all(done))
        ),
        newton,
        (
            ops.convert_to_tensor(0),
            ops.zeros((batch,), "float32"),
            ops.full((batch,), -1.0),
            ops.zeros((batch,), "bool"),
        ),
    )
    length = ops.minimum(lam[:, None] * rate, room)
    length = ops.where(feasible[:, None], length, room)
    return ops.where(valid, -ops.sign(w) * length, 0.0)


def projection_linf(
    points: TensorLike,
    w: TensorLike,
    b: TensorLike,
    value_range: ValueRange = (0.0, 1.0),
) -> Tensor:
    """Minimal L-inf steps from points onto hyperplanes within a box.

    For every row, the step `d` that solves

        min ||d||_inf  subject to  <w, t + d> = b,  low <= t + d <= high.

    The optimum moves each coordinate by the same amount `lam` against the
    sign of `w_i` (less where it meets the box); if the hyperplane does not
    meet the box, `t + d` is the box corner closest to it. Coordinates
    with `w_i = 0` do not move.

    Args:
        points: Float array `(batch, n)` of points `t` inside the box.
        w: Float array `(batch, n)`, the hyperplanes' normals.
        b: Float array `(batch,)`, their offsets.
        value_range: Pair `(low, high)`, the box. Defaults to `(0.0, 1.0)`.

    Returns:
        Float32 tensor `(batch, n)`, the steps `d`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.attacks._fab import projection_linf
    >>> t = np.full((1, 3), 0.5, "float32")
    >>> w = np.array([[1.0, -2.0, 1.0]], "float32")
    >>> np.asarray(projection_linf(t, w, np.array([0.4], "float32")))
    array([[ 0.1, -0.1,  0.1]], dtype=float32)

    Reference:
        Croce and Hein, "Minimally distorted Adversarial Examples with a Fast
        Adaptive Boundary Attack", ICML 2020,
        [arXiv:1907.02044](https://arxiv.org/abs/1907.02044).
    """
    return _projection(points, w, b, value_range, "linf")


def projection_l2(
    points: TensorLike,
    w: TensorLike,
    b: TensorLike,
    value_range: ValueRange = (0.0, 1.0),
) -> Tensor:
    """Minimal L2 steps from points onto hyperplanes within a box.

    For every row, the step `d` that solves

        min ||d||_2  subject to  <w, t + d> = b,  low <= t + d <= high.

    The optimum is `d_i = clip(-lam * w_i, low - t_i, high - t_i)` for the
    `lam >= 0` that reaches the hyperplane (`d = -w (<w, t> - b) /
    ||w||^2` when the box is not in the way); if the hyperplane does not
    meet the box, `t + d` is the box corner closest to it.

    Args:
        points: Float array `(batch, n)` of points `t` inside the box.
        w: Float array `(batch, n)`, the hyperplanes' normals.
        b: Float array `(batch,)`, their offsets.
        value_range: Pair `(low, high)`, the box. Defaults to `(0.0, 1.0)`.

    Returns:
        Float32 tensor `(batch, n)`, the steps `d`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.attacks._fab import projection_l2
    >>> t = np.full((1, 2), 0.5, "float32")
    >>> w = np.array([[3.0, 4.0]], "float32")
    >>> d = projection_l2(t, w, np.array([3.0], "float32"))
    >>> np.asarray(d).round(4)
    array([[-0.06, -0.08]], dtype=float32)

    Reference:
        Croce and Hein, "Minimally distorted Adversarial Examples with a Fast
        Adaptive Boundary Attack", ICML 2020,
        [arXiv:1907.02044](https://arxiv.org/abs/1907.02044).
    """
    return _projection(points, w, b, value_range, "l2")


def _projection(
    points: TensorLike,
    w: TensorLike,
    b: TensorLike,
    value_range: ValueRange,
    norm: str,
) -> Tensor:
    value_range = _validation.check_value_range(value_range)
    points = ops.cast(ops.convert_to_tensor(points), "float32")
    w = ops.cast(ops.convert_to_tensor(w), "float32")
    b = ops.cast(ops.convert_to_tensor(b), "float32")
    offset = ops.sum(w * points, axis=-1) - b
    return hyperplane_box_step(points, w, offset, value_range, norm)


@register
class FAB(Attack):
    """Fast Adaptive Boundary attack, targeted version (AutoAttack's FAB-T).

    A minimal-norm attack: it searches the smallest L-inf or L2
    perturbation that changes the decision, and returns it if its norm is
    at most `eps` (otherwise the clean input: the sample counts as robust
    at `eps`). From the iterate `x_k`, the decision boundary between the
    label `y` and a target class `t` is linearised into the hyperplane
    `f(x_k) + <grad f(x_k), z - x_k> = 0`, `f = z_t - z_y`; `d_k` and
    `d_0` are the minimal steps from `x_k` and from the clean `x` onto
    it within the value range (`projection_linf` / `projection_l2`), and

        x_{k+1} = clip((1 - a)(x_k + eta d_k) + a (x + eta d_0)),
        a = min(|d_k| / (|d_k| + |d_0|), alpha_max).

    When `x_{k+1}` is adversarial, it is recorded if it is the smallest
    yet and the iterate moves back, `x + beta (x_{k+1} - x)`. One
    gradient (of `f`) and one extra forward pass per iteration.

    Untargeted use (`targeted=False`, the default) is FAB-T as run by
    AutoAttack's standard version: one search per target class, the
    runner-up classes of the clean logits in order (2nd, 3rd, ... up to
    `target_classes` of them), each followed by `restarts - 1` searches
    from random starts (of norm `eps / 2`); success is any
    misclassification. A sample keeps the first result within `eps`
    (AutoAttack's chaining), and searches stop once every sample is done.
    Samples already misclassified are returned unchanged.

    With `targeted=True`, `y` holds the target classes, success is
    reaching them, and each iteration linearises `z_t - max_{j != t} z_j`
    (the strongest competitor at the iterate); `target_classes` is unused.

    Distance measure: L-inf or L2. Defaults from AutoAttack's standard
    version: 100 iterations, `alpha_max=0.1`, `eta=1.05`, `beta=0.9`, one
    run per target, 9 targets. Cost: up to `target_classes * restarts *
    steps` gradients and as many forward passes.

    Args:
        eps: Float >= 0 (or a variable): the acceptance radius (and the
            scale of random restarts). Defaults to `0.3`.
        steps: Int >= 1, iterations per search. Defaults to `100`.
        restarts: Int >= 1, searches per target; all but the first start
            from a random point. Defaults to `1`.
        target_classes: Int >= 1, the number of runner-up classes tried
            as targets (at most `classes - 1`). Defaults to `9`.
        alpha_max: Float in [0, 1], the largest weight of the projection
            of the clean input. Defaults to `0.1`.
        eta: Float >= 1, the overshoot of the projections. Defaults to
            `1.05`.
        beta: Float in (0, 1), the backward step after a success.
            Defaults to `0.9`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        targeted: Bool; if True `y` holds target classes. Defaults to
            `False`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool, `training` flag of the forward passes. Defaults to
            `False`.
        seed: Int or None (random restarts). Defaults to `None`.
        jit_compile: Bool, XLA-compile the attack. Defaults to `False`.

    Example:

    On a linear model FAB finds the closest point of the decision
    boundary (just beyond it): here the logit margin is 0.4 and
    `||w_1 - w_0||_1 = 4`, so the smallest L-inf perturbation is 0.1.

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> model.set_weights([np.array([[1., -1.], [1., -1.]]),
    ...                    np.array([0., 1.])])
    >>> x = np.array([[0.35, 0.35]], "float32")  # logits 0.7 and 0.3
    >>> attack = keras_adv.attacks.FAB(eps=0.3, steps=20)
    >>> x_adv = attack(model, x)
    >>> round(float(np.abs(np.asarray(x_adv) - x).max()), 3)
    0.101

    Reference:
        Croce and Hein, "Minimally distorted Adversarial Examples with a Fast
        Adaptive Boundary Attack", ICML 2020,
        [arXiv:1907.02044](https://arxiv.org/abs/1907.02044). Croce and Hein,
        "Reliable evaluation of adversarial robustness with an ensemble of
        diverse parameter-free attacks", ICML 2020,
        [arXiv:2003.01690](https://arxiv.org/abs/2003.01690) (FAB-T).
    """

    def __init__(
        self,
        eps: Eps = 0.3,
        steps: int = 100,
        restarts: int = 1,
        target_classes: int = 9,
        alpha_max: float = 0.1,
        eta: float = 1.05,
        beta: float = 0.9,
        norm: Norm = "linf",
        value_range: ValueRange = (0.0, 1.0),
        targeted: bool = False,
        from_logits: bool | None = None,
        training: bool = False,
        seed: int | None = None,
        jit_compile: bool = False,
    ) -> None:
        super().__init__(
            eps=eps,
            norm=norm,
            value_range=value_range,
            targeted=targeted,
            from_logits=from_logits,
            training=training,
            seed=seed,
            jit_compile=jit_compile,
        )
        self.steps = _validation.check_int("steps", steps, minimum=1)
        self.restarts = _validation.check_int("restarts", restarts, minimum=1)
        self.target_classes = _validation.check_int(
            "target_classes", target_classes, minimum=1
        )
        self.alpha_max = _validation.check_number(
            "alpha_max", alpha_max, minimum=0.0
        )
        if self.alpha_max > 1.0:
            raise ValueError(
                _validation.invalid(
                    "alpha_max", "a number in [0, 1]", alpha_max
                )
            )
        self.eta = _validation.check_number("eta", eta, minimum=1.0)
        self.beta = _validation.check_number(
            "beta", beta, minimum=0.0, strict=True
        )
        if self.beta >= 1.0:
            raise ValueError(
                _validation.invalid("beta", "a number in (0, 1)", beta)
            )

    # ----------------------------------------------------------------- run
    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        x0 = _flat(x)
        batch = ops.shape(x0)[0]
        eps = ops.broadcast_to(ops.cast(eps, "float32"), (batch,))
        logits = model_logits(x)
        # Already adversarial: the clean input is the minimal perturbation.
        done = self.is_successful(logits, y)
        if self.targeted:
            runs = self.restarts
            targets = None
        else:
            classes = logits.shape[-1]
            count = min(self.target_classes, classes - 1)
            runs = count * self.restarts
            targets = ops.top_k(logits, count + 1)[1][:, 1:]

        def attempt(
            run: Tensor, carry: tuple[Tensor, Tensor]
        ) -> tuple[Tensor, Tensor]:
            x_adv, done = carry

            def search() -> tuple[Tensor, Tensor]:
                pair = None
                if targets is not None:
                    rank = run // self.restarts
                    pair = sparse_labels(ops.take(targets, rank, axis=1))
                start = self._start(
                    x0, eps, _random.fold_seed(seed, run), run % self.restarts
                )
                best, best_norm = self._search(
                    model_logits, x, x0, start, y, pair
                )
                accept = ops.logical_and(
                    ops.logical_not(done), best_norm <= eps
                )
                return (
                    ops.where(accept[:, None], best, x_adv),
                    ops.logical_or(done, accept),
                )

            return ops.cond(ops.all(done), lambda: (x_adv, done), search)

        x_adv, _ = ops.fori_loop(0, runs, attempt, (x0, done))
        return ops.reshape(x_adv, ops.shape(x))

    def _start(
        self, x0: Tensor, eps: Tensor, seed: Tensor, restart: int | Tensor
    ) -> Tensor:
        """The clean input, or for restarts a random point at `eps / 2`."""
        if self.restarts == 1:
            return x0
        if self.norm == "linf":
            noise = _random.random_uniform(ops.shape(x0), seed, -1.0, 1.0)
        else:
            noise = _random.random_normal(ops.shape(x0), seed)
        noise = noise / ops.maximum(_norm(noise, self.norm), _TINY)[:, None]
        start = self.threat_model.clip(x0 + 0.5 * eps[:, None] * noise)
        return ops.where(restart > 0, start, x0)

    def _difference(
        self, logits: Tensor, y: Tensor, target: Tensor | None
    ) -> Tensor:
        """The function whose zero level is the boundary searched."""
        if target is None:  # targeted: y is the target
            own = ops.take_along_axis(logits, y[:, None], axis=-1)[:, 0]
            mask = ops.one_hot(y, logits.shape[-1]) > 0
            rival = ops.max(ops.where(mask, float("-inf"), logits), axis=-1)
            return own - rival
        z_t = ops.take_along_axis(logits, target[:, None], axis=-1)[:, 0]
        z_y = ops.take_along_axis(logits, y[:, None], axis=-1)[:, 0]
        return z_t - z_y

    def _search(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        x0: Tensor,
        start: Tensor,
        y: Tensor,
        target: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """One FAB search; returns the smallest success and its norm."""
        norm = self.norm
        value_range = self.value_range
        shape = ops.shape(x)
        batch = ops.shape(x0)[0]

        def step(
            i: Tensor, carry: tuple[Tensor, Tensor, Tensor]
        ) -> tuple[Tensor, Tensor, Tensor]:
            x1, best, best_norm = carry
            f, grad = model_logits.value_and_input_gradient(
                lambda logits: self._difference(logits, y, target),
                ops.reshape(x1, shape),
            )
            grad = _flat(grad)
            # The linearised boundary's value is f at x1 and f + <grad,
            # x0 - x1> at x0: computed from the small x1 - x0, not as a
            # difference of two large dot products (float32 cancellation).
            offset0 = f - ops.sum(grad * (x1 - x0), axis=-1)
            steps = hyperplane_box_step(
                ops.concatenate([x1, x0], axis=0),
                ops.concatenate([grad, grad], axis=0),
                ops.concatenate([f, offset0], axis=0),
                value_range,
                norm,
            )
            d1, d0 = steps[:batch], steps[batch:]
            a1 = ops.maximum(_norm(d1, norm), _MIN_STEP)
            a0 = ops.maximum(_norm(d0, norm), _MIN_STEP)
            alpha = ops.clip(a1 / (a1 + a0), 0.0, self.alpha_max)[:, None]
            x1 = (1.0 - alpha) * (x1 + self.eta * d1) + alpha * (
                x0 + self.eta * d0
            )
            x1 = self.threat_model.clip(x1)
            success = self.is_successful(
                model_logits(ops.reshape(x1, shape)), y
            )
            distance = _norm(x1 - x0, norm)
            better = ops.logical_and(success, distance < best_norm)
            best = ops.where(better[:, None], x1, best)
            best_norm = ops.where(better, distance, best_norm)
            x1 = ops.where(success[:, None], x0 + self.beta * (x1 - x0), x1)
            return x1, best, best_norm

        carry = (start, x0, ops.full((batch,), _NO_SUCCESS, "float32"))
        _, best, best_norm = ops.fori_loop(0, self.steps, step, carry)
        return best, best_norm

    # ------------------------------------------------------------ report
    def perturbation_norms(
        self,
        model: keras.Model,
        x: Array,
        x_adv: Array,
        y: Array | None = None,
    ) -> Tensor:
        """Per-sample norm of `x_adv - x`; inf where `x_adv` does not fool.

        FAB returns the clean input where it finds no perturbation within
        `eps`, so after `x_adv = attack(model, x, y)` this is the minimal
        perturbation found (0 for samples misclassified to begin with, inf
        for samples robust at `eps`). Graph-safe (one forward pass).

        Args:
            model: The Keras model attacked.
            x: Float array of clean inputs.
            x_adv: The attack's result for `x`.
            y: The labels (targets if targeted) given to the attack, or
                None for the model's predictions on `x`.

        Returns:
            Float32 tensor `(batch,)`.
        """
        return _perturbation_norms(self, model, x, x_adv, y)

    def get_config(self) -> Config:
        config = super().get_config()
        del config["loss"]
        config.update(
            {
                "steps": self.steps,
                "restarts": self.restarts,
                "target_classes": self.target_classes,
                "alpha_max": self.alpha_max,
                "eta": self.eta,
                "beta": self.beta,
            }
        )
        return config


def _perturbation_norms(
    attack: Attack,
    model: keras.Model,
    x: Array,
    x_adv: Array,
    y: Array | None,
) -> Tensor:
    x = ops.cast(ops.convert_to_tensor(x), "float32")
    x_adv = ops.cast(ops.convert_to_tensor(x_adv), "float32")
    model_logits = attack.model_logits(model)
    if y is None:
        if attack.targeted:
            raise ValueError(
                "A targeted attack needs `y`: the target classes. "
                "Received: y=None"
            )
        y = ops.argmax(model_logits(x), axis=-1)
    y = sparse_labels(y)
    fooled = attack.is_successful(model_logits(x_adv), y)
    distance = attack.threat_model.distance(x, x_adv)
    return ops.where(fooled, distance, float("inf"))
