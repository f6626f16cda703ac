"""Auto-PGD (Croce and Hein 2020): APGD and its targeted-DLR variant APGDT.

APGD is PGD with momentum and a step size that adapts itself: it starts at
`2 * eps` and halves, per sample, at checkpoints where the search stalled,
restarting from the best point found. Following AutoAttack's reference
implementation (fra31/auto-attack, `autopgd_base.py`):

* the start is a random point on the ball's boundary;
* each iteration takes a projected steepest-ascent step `z` and mixes it
  with the last move, `x <- P(x + a (z - x) + (1 - a) (x - x_prev))`, with
  `a = 0.75` (`a = 1` on the first step);
* checkpoints come after 22, 41, 57, 70, 80, 87, 93 and 99 of 100
  iterations (`checkpoint_schedule`); at one, the step halves and the
  iterate returns to the best point where the loss rose in at most
  `rho = 75 %` of the steps since the last checkpoint, or where the step
  was not halved last time and the best loss has not improved since (the
  first window's first step is compared with the start, as in the paper;
  the reference code compares it with a row of zeros not yet written);
* a run returns, per sample, its last misclassified iterate; samples never
  misclassified keep the clean input, and restarts (APGDT: target classes)
  only attack the samples still robust.

Everything runs in one graph: the iterations in a `while` loop with the
checkpoint decisions as tensors, restarts (and APGDT's target classes) in
a second loop over the still-robust subset of the batch, gathered into a
batch of dynamic size and scattered back. With `jit_compile=True` the
attack runs every sample with masks instead (static shapes for XLA; the
same results from the same random draws, but passes spent on samples
already fooled). Inside a caller's XLA-compiled function the dynamic
subsets remain: XLA compiles them as bounded shapes for the layers tested
(Dense, Conv2D, pooling); for a model with an op that refuses, build the
attack with `jit_compile=True`.
"""

from collections.abc import Callable

import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import AttackLoss
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv._types import ValueRange
from keras_adv.attacks._base import Attack
from keras_adv.attacks._logits import ModelLogits
from keras_adv.losses._dlr import dlr_loss

#: Weight `a` of the new step in APGD's momentum update.
MOMENTUM = 0.75
#: Initial step size in units of eps.
INITIAL_STEP = 2.0
_TINY = 1e-12

#: One run on per-sample tensors: returns `(success, candidate)`.
_Run = Callable[..., tuple[Tensor, Tensor]]


def checkpoint_schedule(steps: int) -> list[tuple[int, int]]:
    """APGD's checkpoints for a run of `steps` iterations.

    The paper's `p_0 = 0`, `p_1 = 0.22`,
    `p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)` (fractions of
    `steps`), with the reference implementation's integer windows: the first
    lasts `max(int(0.22 N), 1)` iterations and each next one is
    `max(int(0.03 N), 1)` shorter, but at least `max(int(0.06 N), 1)`.

    Args:
        steps: Int >= 1, the number of iterations `N`.

    Returns:
        A list of `(iterations_done, window)` pairs: a checkpoint comes after
        `iterations_done` iterations and looks back over the last `window`.

    Example:

    >>> from keras_adv.attacks._apgd import checkpoint_schedule
    >>> [done for done, _ in checkpoint_schedule(100)]
    [22, 41, 57, 70, 80, 87, 93, 99]
    """
    steps = _validation.check_int("steps", steps, minimum=1)
    window = max(int(0.22 * steps), 1)
    shortest = max(int(0.06 * steps), 1)
    decrease = max(int(0.03 * steps), 1)
    schedule, done = [], 0
    while done + window <= steps:
        done += window
        schedule.append((done, window))
        window = max(window - decrease, shortest)
    return schedule


def _value_gradient_logits(
    model_logits: ModelLogits,
    x: Tensor,
    objective_fn: Callable[[Tensor], Tensor],
) -> tuple[Tensor, Tensor, Tensor]:
    """`(objective, input gradient, logits)` from one forward+backward."""
    seen = []

    def objective(logits: Tensor) -> Tensor:
        seen.append(logits)
        return objective_fn(logits)

    value, grad = model_logits.value_and_input_gradient(objective, x)
    return value, grad, seen[0]


def _per_sample(values: Tensor, x: Tensor) -> Tensor:
    """`(batch,)` view of a scalar or per-sample tensor."""
    values = ops.reshape(ops.cast(values, "float32"), [-1])
    return values * ops.ones([ops.shape(x)[0]], "float32")


@register
class APGD(Attack):
    """Auto-PGD (Croce and Hein 2020), L-inf or L2, CE or DLR loss.

    A step-size-free PGD: from a random point on the ball's boundary, it
    takes projected steepest-ascent steps with momentum 0.75, starting at
    `2 * eps` and halving the step (and going back to the best point) at
    checkpoints where progress stalled. Each sample keeps its last
    misclassified iterate, or the clean input if none was found; restarts
    run only on the samples still robust. With `loss="dlr"` (the DLR loss,
    invariant to the scale of the logits) it is the second attack of
    AutoAttack.

    Distance measure: L-inf or L2. Defaults from the paper: 100 iterations,
    `rho = 0.75`, one restart.

    Args:
        eps: Float >= 0 (or a variable): radius of the ball in input units.
            Defaults to `0.3`.
        steps: Int >= 1, iterations per run. Defaults to `100`.
        restarts: Int >= 1, runs from new random starts on the samples
            still robust. Defaults to `1`.
        rho: Float in `[0, 1]`: the step halves at a checkpoint where the
            loss rose in at most this fraction of the steps since the
            previous one. Defaults to `0.75`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        targeted: Bool; if True `y` holds target classes, the attack
            ascends minus the loss towards them and keeps iterates classified
            as the target (not with `loss="dlr"`: see `APGDT`). Defaults to
            `False`.
        loss: `"ce"`, `"dlr"` (needs >= 3 classes), `"margin"` or a callable
            (see `keras_adv.losses.get`). Defaults to `"ce"`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool, `training` flag of the forward passes. Defaults to
            `False`.
        seed: Int or None. Defaults to `None`.
        jit_compile: Bool, XLA-compile the attack (restarts then run on the
            whole batch with masks). Defaults to `False`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).uniform(size=(8, 4)).astype("float32")
    >>> attack = keras_adv.attacks.APGD(eps=0.1, steps=5, seed=0)
    >>> x_adv = attack(model, x)
    >>> bool(np.abs(np.asarray(x_adv) - x).max() <= 0.1 + 1e-6)
    True

    Reference:
        Croce and Hein, "Reliable evaluation of adversarial robustness with
        an ensemble of diverse parameter-free attacks", ICML 2020,
        [arXiv:2003.01690](https://arxiv.org/abs/2003.01690).
    """

    def __init__(
        self,
        eps: Eps = 0.3,
        steps: int = 100,
        restarts: int = 1,
        rho: float = 0.75,
        norm: Norm = "linf",
        value_range: ValueRange = (0.0, 1.0),
        targeted: bool = False,
        loss: AttackLoss = "ce",
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
            loss=loss,
            from_logits=from_logits,
            training=training,
            seed=seed,
            jit_compile=jit_compile,
        )
        self.steps = _validation.check_int("steps", steps, minimum=1)
        self.restarts = _validation.check_int("restarts", restarts, minimum=1)
        rho = _validation.check_number("rho", rho, minimum=0.0)
        if rho > 1.0:
            raise ValueError(_validation.invalid("rho", "a number <= 1", rho))
        self.rho = rho
        self._check_targeted_loss()

    def _check_targeted_loss(self) -> None:
        if self.targeted and self.loss_fn is dlr_loss:
            raise ValueError(
                "APGD with targeted=True cannot use loss='dlr': the "
                "untargeted DLR loss is flat while the target is the third "
                "class, so the search stalls there. Use loss='ce', or APGDT "
                "(the targeted DLR loss over the most likely wrong classes)."
            )

    # ------------------------------------------------------------- start
    def start_noise(self, x: Tensor, seed: Tensor) -> Tensor:
        """The random draw behind a start, for the whole batch.

        Uniform in `[-1, 1]` per coordinate (L-inf) or standard normal
        (L2), from a stateless `(2,)` seed.
        """
        shape = ops.shape(x)
        if self.norm == "linf":
            return tf.random.stateless_uniform(shape, seed, -1.0, 1.0)
        return tf.random.stateless_normal(shape, seed)

    def start_point(self, x: Tensor, eps: Tensor, noise: Tensor) -> Tensor:
        """The start of a run: `noise` scaled onto the ball's boundary.

        As in the reference, `x + eps * t / (||t|| + 1e-12)` (the L-inf or
        L2 norm of `t` per sample), clipped to the value range.

        Args:
            x: Float32 clean inputs.
            eps: Float32 radius, scalar or `(batch,)`.
            noise: `start_noise(x, seed)` (or its rows for `x`).
        """
        axes = list(range(1, len(x.shape)))
        if self.norm == "linf":
            size = ops.max(ops.abs(noise), axis=axes, keepdims=True)
        else:
            size = ops.sqrt(
                ops.sum(ops.square(noise), axis=axes, keepdims=True)
            )
        eps = self.threat_model.eps_tensor(x, eps)
        return self.threat_model.clip(x + eps * noise / (size + _TINY))

    # --------------------------------------------------------------- run
    def run_once(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        start: Tensor,
        objective_fn: Callable[[Tensor], Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """One APGD run from `start` (graph-safe).

        Args:
            model_logits: The `ModelLogits` adapter.
            x: Float32 clean inputs.
            y: Int32 labels (targets if targeted), `(batch,)`.
            eps: Float32 radius, `(batch,)`.
            start: Float32 start points inside the threat model.
            objective_fn: Optional `logits -> (batch,)` objective to ascend;
                defaults to `self.objective(logits, y)`.

        Returns:
            A dict of tensors: `success` (bool, some iterate was successful),
            `x_adv` (the last successful iterate, else `start`), `x_best`
            and `loss_best` (the highest objective seen), `x_last` (the final
            iterate) and `step_size` (the final per-sample step).
        """
        if objective_fn is None:

            def objective_fn(logits: Tensor) -> Tensor:
                return self.objective(logits, y)

        tm = self.threat_model
        expand = [-1] + [1] * (len(x.shape) - 1)
        is_check = [False] * self.steps
        limits = [0.0] * self.steps
        for done, window in checkpoint_schedule(self.steps):
            is_check[done - 1] = True
            limits[done - 1] = self.rho * window
        is_check = tf.constant(is_check)
        limits = tf.constant(limits, tf.float32)

        def evaluate(x_adv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            return _value_gradient_logits(model_logits, x_adv, objective_fn)

        def select(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
            return ops.where(ops.reshape(mask, expand), a, b)

        loss, grad, logits = evaluate(start)
        success = self.is_successful(logits, y)
        step = INITIAL_STEP * ops.reshape(eps, expand)
        state = (
            start,  # x_adv: the current iterate
            start,  # x_prev: the iterate before it (momentum)
            grad,
            step,
            start,  # x_best
            grad,  # grad_best
            loss,  # loss_best
            loss,  # loss_prev: the loss at the previous iterate
            ops.zeros_like(loss),  # rises since the last checkpoint
            loss,  # loss_best at the last checkpoint
            ops.ones_like(success),  # step halved at the last checkpoint
            start,  # x_adv: the last successful iterate
            success,
        )

        def body(i: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            (
                x_adv,
                x_prev,
                grad,
                step,
                x_best,
                grad_best,
                loss_best,
                loss_prev,
                rises,
                loss_best_last,
                reduced_last,
                x_found,
                success,
            ) = state
            a = ops.where(i > 0, MOMENTUM, 1.0)
            z = tm.project(x_adv + step * tm.ascent_direction(grad), x, eps)
            moved = x_adv + a * (z - x_adv) + (1.0 - a) * (x_adv - x_prev)
            x_new = tm.project(moved, x, eps)
            loss, grad_new, logits = evaluate(x_new)
            fooled = self.is_successful(logits, y)
            x_found = select(fooled, x_new, x_found)
            success = ops.logical_or(success, fooled)
            improved = loss > loss_best
            x_best = select(improved, x_new, x_best)
            grad_best = select(improved, grad_new, grad_best)
            loss_best = ops.where(improved, loss, loss_best)
            rises = rises + ops.cast(loss > loss_prev, "float32")
            # Checkpoint (a no-op elsewhere): halve where the loss rose in
            # at most rho of the window's steps, or where the step was not
            # halved last time and the best loss has not improved since.
            check = is_check[i]
            halve = ops.logical_or(
                rises <= limits[i],
                ops.logical_and(
                    ops.logical_not(reduced_last), loss_best_last >= loss_best
                ),
            )
            reduce = ops.logical_and(check, halve)
            step = select(reduce, 0.5 * step, step)
            x_next = select(reduce, x_best, x_new)
            grad_next = select(reduce, grad_best, grad_new)
            reduced_last = ops.where(check, halve, reduced_last)
            loss_best_last = ops.where(check, loss_best, loss_best_last)
            rises = ops.where(check, 0.0, rises)
            return (
                x_next,
                x_adv,
                grad_next,
                step,
                x_best,
                grad_best,
                loss_best,
                loss,
                rises,
                loss_best_last,
                reduced_last,
                x_found,
                success,
            )

        state = ops.fori_loop(0, self.steps, body, state)
        return {
            "success": state[12],
            "x_adv": state[11],
            "x_best": state[4],
            "loss_best": state[6],
            "x_last": state[0],
            "step_size": ops.reshape(state[3], [-1]),
        }

    def _run_from_noise(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        noise: Tensor,
    ) -> tuple[Tensor, Tensor]:
        out = self.run_once(
            model_logits, x, y, eps, self.start_point(x, eps, noise)
        )
        return out["success"], out["x_adv"]

    def _on_robust(
        self,
        run: _Run,
        robust: Tensor,
        x_adv: Tensor,
        inputs: tuple[Tensor, ...],
    ) -> tuple[Tensor, Tensor]:
        """`run(*inputs)` on the robust samples only; merges its successes.

        `run` maps per-sample tensors to `(success, candidate)`. Returns
        the updated `(x_adv, robust)`.
        """
        expand = [-1] + [1] * (len(x_adv.shape) - 1)
        if self.jit_compile:  # static shapes: the whole batch, masked
            success, candidate = run(*inputs)
            fooled = ops.logical_and(robust, success)
            x_adv = ops.where(ops.reshape(fooled, expand), candidate, x_adv)
            return x_adv, ops.logical_and(robust, ops.logical_not(success))
        index = tf.where(robust)

        def attack() -> tuple[Tensor, Tensor]:
            subset = [tf.gather_nd(t, index) for t in inputs]
            success, candidate = run(*subset)
            current = tf.gather_nd(x_adv, index)
            merged = ops.where(ops.reshape(success, expand), candidate, current)
            return (
                tf.tensor_scatter_nd_update(x_adv, index, merged),
                tf.tensor_scatter_nd_update(
                    robust, index, ops.logical_not(success)
                ),
            )

        return tf.cond(tf.shape(index)[0] > 0, attack, lambda: (x_adv, robust))

    def _runs(
        self,
        run: _Run,
        count: int,
        x: Tensor,
        robust: Tensor,
        inputs: tuple[Tensor, ...],
        seed: Tensor,
    ) -> Tensor:
        """`count` runs on the still-robust samples, run `r` seeded `r`.

        `run(r, noise, *per_sample)` is one run; `inputs` are the
        per-sample tensors after the noise.
        """

        def body(
            r: int | Tensor, carry: tuple[Tensor, Tensor]
        ) -> tuple[Tensor, Tensor]:
            x_adv, robust = carry
            noise = self.start_noise(x, _random.fold_seed(seed, r))

            def run_r(
                noise: Tensor, *per_sample: Tensor
            ) -> tuple[Tensor, Tensor]:
                return run(r, noise, *per_sample)

            return self._on_robust(run_r, robust, x_adv, (noise,) + inputs)

        carry = (x, robust)
        if count == 1:
            return body(0, carry)[0]
        return ops.fori_loop(0, count, body, carry)[0]

    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        self._check_targeted_loss()
        eps = _per_sample(eps, x)
        robust = ops.logical_not(self.is_successful(model_logits(x), y))

        def run(
            r: Tensor, noise: Tensor, x: Tensor, y: Tensor, eps: Tensor
        ) -> tuple[Tensor, Tensor]:
            return self._run_from_noise(model_logits, x, y, eps, noise)

        return self._runs(run, self.restarts, x, robust, (x, y, eps), seed)

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            {"steps": self.steps, "restarts": self.restarts, "rho": self.rho}
        )
        return config
