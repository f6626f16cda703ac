"""Square Attack (Andriushchenko et al. 2020): a score-based random search.

(A little over 600 lines: one class, the search loop with its query
accounting and its L-inf and L2 candidate rules, which share the loop's
state; the schedule and geometry the reference specifies already live in
`_square_schedule.py`.)

Square uses only the model's outputs, never its gradients, so it also
attacks models that cannot be differentiated (a rounding layer) and
exposes gradient masking. It needs scores, not only labels: on a model
whose outputs are one-hot labels the margin does not change until the
label flips, so the search has nothing to climb (a `UserWarning` says so
at the first call on such a model). It follows AutoAttack's reference
implementation (fra31/auto-attack, `autoattack/square.py`), the version
run by AutoAttack's standard evaluation:

* the start: L-inf, vertical stripes (`x + eps s`, one random sign `s`
  per column and channel, shared by all rows); L2, a grid of "meta
  pseudo-Gaussian" bumps (`meta_pseudo_gaussian`) of side `h // 5` with
  random signs, scaled to norm `eps`;
* each iteration draws a window of side `window_side(p)`, where `p`
  halves on the schedule `p_selection` (after iterations 10, 50, 200,
  500, 1000, 2000, 4000, 6000 and 8000 of 10,000, rescaled to
  `n_queries` unless `rescale_schedule=False`), at a random position (the
  same for the whole batch, as in the reference). L-inf: the window of
  the best point so far is set to `x +- eps` (one random sign per
  channel: the reference adds `+-2 eps` and projects). L2: a second
  random window is emptied and its mass moved, with the norm still
  available, into the first window, as a new pseudo-Gaussian bump (random
  sign per sample and channel) plus the old content; the whole
  perturbation is rescaled to norm `eps`;
* a candidate replaces the best point when it raises the attack loss (the
  margin by default) or is adversarial; a sample stops querying once
  adversarial.

Where this differs from the reference:

* `n_queries` counts every evaluation of a sample, the start included
  (as max-andr/square-attack's L-inf attack); AutoAttack runs
  `n_queries` iterations after the start, one evaluation more.
* Windows are placed at any of the `h - s + 1` positions; the references
  draw from `randint(0, h - s)`, so their squares never reach the last
  row and column (no matter on images with empty borders, a feature that
  never moves on a short vector).
* Success is `Attack.is_successful` (the argmax), where the reference
  uses `margin <= 0`: they differ on exact ties only.
* Targeted attacks climb `-loss(target)` of the chosen loss (the
  targeted margin by default); AutoAttack always uses the cross-entropy
  to the target (`loss="ce"`).
* Shapes the reference does not handle: windows larger than the image
  are cut to it, the L2 start uses the tiles that fit, vectors are
  `1 x n` images.
* Random numbers come from TensorFlow's stateless generators (same seed,
  same result), not torch's global generator.

Compiled form: everything runs in one graph. The queries are a
`while` loop over iterations that stops as soon as every sample is
adversarial; each iteration gathers the still-robust samples, builds
their candidates and evaluates the model once on them only, then
scatters the results back. With `jit_compile=True` (XLA needs static
shapes) the iterations use masks over the whole batch instead: the same
algorithm, every iteration evaluating the whole batch (and TensorFlow
draws other random numbers under XLA, so results differ from the
default graph's).

The per-sample query counts are returned (`Square.perturb_with_queries`,
`Square.generate_with_extras`), not stored in a variable: a stored
count would be state shared by every caller, written from inside
whatever graph runs the attack (a training step, each replica of a
distribution strategy, an XLA cluster that needs its shape fixed), while
a returned tensor works in all of them.
"""

import warnings
from collections.abc import Callable

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _outputs
from keras_adv import _random
from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import AttackLoss
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import Seed
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange
from keras_adv.attacks._base import Attack
from keras_adv.attacks._logits import ModelLogits
from keras_adv.attacks._square_schedule import _TINY
from keras_adv.attacks._square_schedule import _grid
from keras_adv.attacks._square_schedule import _l2_tiles
from keras_adv.attacks._square_schedule import _norm
from keras_adv.attacks._square_schedule import _offset
from keras_adv.attacks._square_schedule import _rect
from keras_adv.attacks._square_schedule import _Schedule
from keras_adv.attacks._square_schedule import _signs
from keras_adv.attacks._square_schedule import _window


@register
class Square(Attack):
    """Square Attack: score-based random search in the L-inf or L2 ball.

    A black-box attack: it queries the model's outputs only and never
    requests a gradient, so it works on models that cannot be
    differentiated (a rounding layer) and is AutoAttack's check against
    gradient masking. It is score-based: the outputs must carry scores
    (logits or probabilities). A model returning only labels (one-hot
    rows) gives the search no signal until the label flips, and the
    attack warns (`UserWarning`, at the first call on such a model) that
    its result then says little about robustness. From a structured
    random start (L-inf: vertical stripes of `+-eps`; L2: a grid of
    pseudo-Gaussian bumps), each query changes a random square window of
    the best point found so far and keeps the change if the attack loss
    (the margin `max_{j != y} z_j - z_y` by default) rises or the sample
    becomes adversarial. The window covers a fraction `p` of the image,
    `p_init` halved on the reference's schedule (`p_selection`). L-inf
    sets the window to `x +- eps`; L2 moves the mass of a second window
    into a new pseudo-Gaussian bump in the first one, keeping the norm at
    `eps` (see the module documentation for the update rules).

    Inputs are read as images: `(batch, h, w, c)` channels last,
    `(batch, h, w)` or `(batch, n)` (a `1 x n` image). A sample stops
    querying as soon as it is adversarial. Adversarial samples are
    returned at the adversarial point found; samples that stay robust and
    samples already misclassified are returned unchanged (as in AutoAttack).
    `restarts` repeat the search on the samples still robust.

    Query counts: `perturb_with_queries` and `generate_with_extras`
    return, with `x_adv`, the number of model evaluations spent on each
    sample, counted as the reference does: 0 for a sample already
    misclassified, 1 for the start, 1 per iteration while the sample is
    robust; at most `restarts * n_queries` (the start included in
    `n_queries`).

    Forward passes: one on the clean batch (two when `y` is None: the
    labels), then, per restart, one per query on the samples still robust
    only; the loop ends as soon as all are adversarial. With
    `jit_compile=True` each query evaluates the whole batch.

    Distance measure: L-inf or L2. Defaults from AutoAttack's standard
    version: 5,000 queries, `p_init=0.8`, margin loss, one run (it also
    sets `rescale_schedule=False`).

    Args:
        eps: Float >= 0 (or a variable): radius of the ball. Defaults to
            `0.3`.
        n_queries: Int >= 1, the query budget per sample and run, the
            start included. Defaults to `5000`.
        p_init: Float in (0, 1], the initial fraction of the image a
            window covers. Defaults to `0.8`.
        restarts: Int >= 1, searches on the samples still robust.
            Defaults to `1`.
        rescale_schedule: Bool, rescale the halvings of `p` to
            `n_queries` (the paper's schedule, see `p_selection`); False
            keeps them at iterations 10, ..., 8000, as AutoAttack's
            standard version does. Defaults to `True`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        targeted: Bool; if True `y` holds target classes. Defaults to
            `False`.
        loss: The attack loss (`"margin"`, `"ce"`, a registered name or a
            callable `(labels, logits) -> (batch,)`). Defaults to
            `"margin"`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool, `training` flag of the forward passes. Defaults to
            `False`.
        seed: Int or None. Defaults to `None`.
        jit_compile: Bool, XLA-compile the attack. Defaults to `False`.

    Example:

    A linear model on 4 features with logits 0.4 apart: only moving every
    feature by -0.1 flips it at `eps=0.1`, and the search finds that
    vertex of the ball within 20 queries.

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.set_weights([np.array([[1., -1.]] * 4), np.array([0., 3.6])])
    >>> x = np.full((1, 4), 0.5, "float32")  # logits 2.0 and 1.6
    >>> attack = keras_adv.attacks.Square(eps=0.1, n_queries=20, seed=0)
    >>> x_adv, queries = attack.perturb_with_queries(model, x)
    >>> np.asarray(x_adv).round(4)
    array([[0.4, 0.4, 0.4, 0.4]], dtype=float32)
    >>> np.asarray(queries)
    array([2], dtype=int32)

    Reference:
        Andriushchenko et al., "Square Attack: a query-efficient black-box
        adversarial attack via random search", ECCV 2020,
        [arXiv:1912.00049](https://arxiv.org/abs/1912.00049). Croce and Hein,
        "Reliable evaluation of adversarial robustness with an ensemble of
        diverse parameter-free attacks", ICML 2020,
        [arXiv:2003.01690](https://arxiv.org/abs/2003.01690) (the version in
        AutoAttack).
    """

    #: Evaluate only the still-robust samples (gather/scatter); without
    #: XLA. False runs every iteration on the whole batch, masked (the
    #: XLA form; the tests compare the two).
    _compact = True

    def __init__(
        self,
        eps: Eps = 0.3,
        n_queries: int = 5000,
        p_init: float = 0.8,
        restarts: int = 1,
        rescale_schedule: bool = True,
        norm: Norm = "linf",
        value_range: ValueRange = (0.0, 1.0),
        targeted: bool = False,
        loss: AttackLoss = "margin",
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
        self.n_queries = _validation.check_int(
            "n_queries", n_queries, minimum=1
        )
        self.p_init = _validation.check_number(
            "p_init", p_init, minimum=0.0, strict=True
        )
        if self.p_init > 1.0:
            raise ValueError(
                _validation.invalid("p_init", "a number in (0, 1]", p_init)
            )
        self.restarts = _validation.check_int("restarts", restarts, minimum=1)
        self.rescale_schedule = _validation.check_bool(
            "rescale_schedule", rescale_schedule
        )

    # ------------------------------------------------------------- public
    def _check_model_once(
        self, model: keras.Model, x: Tensor, y: Tensor | None
    ) -> None:
        first = model not in self._model_info
        super()._check_model_once(model, x, y)
        if first and _outputs.looks_like_one_hot(model(x[:32], training=False)):
            warnings.warn(
                "Square is a score-based search, but the model outputs "
                "one-hot labels: the attack loss does not change until "
                "the label flips, so the search gets no signal and its "
                "robust accuracy overstates robustness. Attack the model's "
                "logits or probabilities instead.",
                UserWarning,
                stacklevel=4,
            )

    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        return self.generate_with_extras(model_logits, x, y, eps, seed)[0]

    def generate_with_extras(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """`generate`, and the queries spent per sample (graph-safe).

        Args:
            model_logits: A `ModelLogits`.
            x: Float32 tensor, the clean inputs.
            y: Int32 tensor `(batch,)`: labels, or targets if targeted.
            eps: Float32 scalar or `(batch,)` tensor.
            seed: Int32 tensor `(2,)`, a stateless seed.

        Returns:
            `(x_adv, {"queries": queries})`: float32 like `x`, and int32
            `(batch,)`.
        """
        h, w, c = _grid(x.shape)
        batch = ops.shape(x)[0]
        grid = ops.reshape(x, (-1, h, w, c))
        eps = ops.reshape(ops.cast(eps, "float32"), (-1,))
        eps = eps * ops.ones((batch,), "float32")
        robust = ops.logical_not(self.is_successful(model_logits(x), y))
        schedule = _Schedule(
            self.n_queries,
            self.p_init,
            self.norm,
            h,
            w,
            c,
            self.rescale_schedule,
        )

        def query(points: Tensor) -> Tensor:
            return model_logits(ops.reshape(points, (-1,) + tuple(x.shape[1:])))

        def restart(
            r: int | Tensor, carry: tuple[Tensor, Tensor, Tensor]
        ) -> tuple[Tensor, Tensor, Tensor]:
            x_adv, robust, queries = carry
            run_seed = _random.fold_seed(seed, r)

            def run() -> tuple[Tensor, Tensor, Tensor]:
                found, best, spent = self._search(
                    query, grid, y, eps, robust, run_seed, schedule
                )
                where = ops.reshape(found, (-1, 1, 1, 1))
                return (
                    ops.where(where, best, x_adv),
                    ops.logical_and(robust, ops.logical_not(found)),
                    queries + spent,
                )

            return ops.cond(ops.any(robust), run, lambda: carry)

        carry = (grid, robust, ops.zeros((batch,), "int32"))
        if self.restarts == 1:
            x_adv, _, queries = restart(0, carry)
        else:
            x_adv, _, queries = ops.fori_loop(0, self.restarts, restart, carry)
        return ops.reshape(x_adv, ops.shape(x)), {"queries": queries}

    def perturb_with_queries(
        self,
        model: keras.Model,
        x: TensorLike,
        y: TensorLike | None = None,
        eps: Eps | None = None,
        seed: Seed | None = None,
        check: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """Adversarial examples and the queries spent on each sample.

        Graph-safe like `perturb` (use it inside a `tf.function`, a
        training step or a distribution strategy: the counts are returned,
        not stored). Called eagerly, it validates its inputs like
        `__call__` and runs a compiled graph cached per model (the base
        class's `perturb_with_extras`).

        Args:
            model: The Keras model.
            x: Float inputs in `value_range`.
            y: Labels (targets if targeted) or None (the model's
                predictions).
            eps: Optional float or `(batch,)` override of `self.eps`.
            seed: Optional int, `(2,)` int tensor or `SeedGenerator`.
                Defaults to the attack's own `seed_generator`.
            check: Bool, in-graph input checks (graph calls). Defaults to
                `True`.

        Returns:
            `(x_adv, queries)`: `x_adv` with the dtype of `x` (no
            gradient), `queries` int32 `(batch,)`.
        """
        x_adv, extras = self.perturb_with_extras(
            model, x, y, eps=eps, seed=seed, check=check
        )
        return x_adv, extras["queries"]

    # ------------------------------------------------------------- search
    def _search(
        self,
        query: Callable[[Tensor], Tensor],
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        active: Tensor,
        seed: Tensor,
        schedule: _Schedule,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One run of the search on the samples where `active` holds.

        Returns `(found, best, spent)`: per sample whether it became
        adversarial, the best point (image view), the queries spent.
        """
        if self.norm == "linf":
            start = self._linf_start(x, eps, _random.fold_seed(seed, 0))
        else:
            start = self._l2_start(x, eps, _random.fold_seed(seed, 0))
        batch = ops.shape(x)[0]
        spread = ops.reshape(eps, (-1, 1, 1, 1))

        def evaluate(candidate: Tensor, y_c: Tensor) -> tuple[Tensor, Tensor]:
            logits = query(candidate)
            return self.objective(logits, y_c), self.is_successful(logits, y_c)

        def first(start_c: Tensor, y_c: Tensor) -> tuple[Tensor, ...]:
            return (start_c,) + evaluate(start_c, y_c)

        lowest = ops.full((batch,), float("-inf"), "float32")
        no = ops.zeros((batch,), "bool")
        best, best_objective, success = self._on_active(
            first, active, (start, y), (x, lowest, no)
        )
        found = ops.logical_and(active, success)
        robust = ops.logical_and(active, ops.logical_not(success))
        spent = ops.cast(active, "int32")

        def cond(
            i: Tensor,
            best: Tensor,
            best_objective: Tensor,
            robust: Tensor,
            found: Tensor,
            spent: Tensor,
        ) -> Tensor:
            return ops.logical_and(i < self.n_queries - 1, ops.any(robust))

        def body(
            i: Tensor,
            best: Tensor,
            best_objective: Tensor,
            robust: Tensor,
            found: Tensor,
            spent: Tensor,
        ) -> tuple[Tensor, ...]:
            step_seed = _random.fold_seed(seed, i + 1)
            phase = schedule.phase(i)
            per_sample: tuple[Tensor, ...] = (
                x,
                y,
                spread,
                best,
                best_objective,
            )
            if self.norm == "l2":
                signs = _signs(
                    (batch, x.shape[-1]), _random.fold_seed(step_seed, 1)
                )
                per_sample += (signs,)

            def step(
                x_c: Tensor,
                y_c: Tensor,
                eps_c: Tensor,
                best_c: Tensor,
                objective_c: Tensor,
                *signs_c: Tensor,
            ) -> tuple[Tensor, Tensor, Tensor]:
                if self.norm == "linf":
                    candidate = self._linf_candidate(
                        x_c, best_c, eps_c, phase, step_seed, schedule
                    )
                else:
                    candidate = self._l2_candidate(
                        x_c,
                        best_c,
                        eps_c,
                        signs_c[0],
                        phase,
                        step_seed,
                        schedule,
                    )
                objective, success = evaluate(candidate, y_c)
                improved = ops.logical_or(objective > objective_c, success)
                where = ops.reshape(improved, (-1, 1, 1, 1))
                return (
                    ops.where(where, candidate, best_c),
                    ops.maximum(objective, objective_c),
                    success,
                )

            best, best_objective, success = self._on_active(
                step, robust, per_sample, (best, best_objective, no)
            )
            spent = spent + ops.cast(robust, "int32")
            found = ops.logical_or(found, ops.logical_and(robust, success))
            robust = ops.logical_and(robust, ops.logical_not(success))
            return i + 1, best, best_objective, robust, found, spent

        loop: tuple[Tensor, ...] = (
            ops.convert_to_tensor(0, "int32"),
            best,
            best_objective,
        )
        loop += (robust, found, spent)
        _, best, _, _, found, spent = ops.while_loop(cond, body, loop)
        return found, best, spent

    def _on_active(
        self,
        fn: Callable[..., tuple[Tensor, ...]],
        active: Tensor,
        inputs: tuple[Tensor, ...],
        outputs: tuple[Tensor, ...],
    ) -> tuple[Tensor, ...]:
        """`fn(*inputs)` on the active rows, merged into `outputs`.

        Gathers the active rows (their number is dynamic) and scatters the
        results back, so only they reach the model; under XLA, where
        shapes are static, `fn` runs on the whole batch and the results
        are merged with a mask.
        """
        if self.jit_compile or not self._compact:
            results = fn(*inputs)
            merged = []
            for new, old in zip(results, outputs):
                mask = ops.reshape(active, (-1,) + (1,) * (len(old.shape) - 1))
                merged.append(ops.where(mask, new, old))
            return tuple(merged)
        index = tf.where(active)
        results = fn(*[tf.gather_nd(t, index) for t in inputs])
        return tuple(
            tf.tensor_scatter_nd_update(old, index, new)
            for new, old in zip(results, outputs)
        )

    # ------------------------------------------------------------- L-inf
    def _linf_start(self, x: Tensor, eps: Tensor, seed: Tensor) -> Tensor:
        """Vertical stripes: `x + eps s`, `s` per column and channel."""
        batch = ops.shape(x)[0]
        _, _, w, c = x.shape
        stripes = _signs((batch, 1, w, c), seed)
        return self.threat_model.clip(
            x + ops.reshape(eps, (-1, 1, 1, 1)) * stripes
        )

    def _linf_candidate(
        self,
        x: Tensor,
        best: Tensor,
        eps: Tensor,
        phase: Tensor,
        seed: Tensor,
        schedule: _Schedule,
    ) -> Tensor:
        """The window of `best` set to `x +- eps` (one sign per channel)."""
        _, h, w, c = x.shape
        u = tf.random.stateless_uniform((2 + c,), seed)
        side_h = ops.take(schedule.sides_h, phase)
        side_w = ops.take(schedule.sides_w, phase)
        rows = _window(_offset(u[0], h - side_h), side_h, h)
        cols = _window(_offset(u[1], w - side_w), side_w, w)
        sign = ops.where(u[2:] < 0.5, -1.0, 1.0)
        # As the reference: add +-2 eps and project back onto the ball.
        candidate = best + _rect(rows, cols) * 2.0 * eps * sign
        candidate = ops.clip(candidate, x - eps, x + eps)
        return self.threat_model.clip(candidate)

    # ---------------------------------------------------------------- L2
    def _l2_start(self, x: Tensor, eps: Tensor, seed: Tensor) -> Tensor:
        """A grid of meta pseudo-Gaussian bumps, random signs, norm eps."""
        batch = ops.shape(x)[0]
        _, h, w, c = x.shape
        tile_id, patterns, n_tiles = _l2_tiles(h, w)
        flip = tf.random.stateless_uniform(
            (n_tiles + 1,), _random.fold_seed(seed, 0)
        )
        flip = ops.take(flip < 0.5, tile_id)
        canvas = ops.where(flip, patterns[1], patterns[0])
        signs = _signs((batch, n_tiles + 1, c), _random.fold_seed(seed, 1))
        signs = ops.take(signs, ops.reshape(tile_id, (-1,)), axis=1)
        delta = ops.reshape(signs, (-1, h, w, c)) * canvas[None, :, :, None]
        delta = delta / (_norm(delta, (1, 2, 3)) + _TINY)
        return self.threat_model.clip(
            x + delta * ops.reshape(eps, (-1, 1, 1, 1))
        )

    def _l2_candidate(
        self,
        x: Tensor,
        best: Tensor,
        eps: Tensor,
        signs: Tensor,
        phase: Tensor,
        seed: Tensor,
        schedule: _Schedule,
    ) -> Tensor:
        """Window 2 emptied, its mass moved into a new bump in window 1."""
        _, h, w, c = x.shape
        u = tf.random.stateless_uniform((5,), _random.fold_seed(seed, 0))
        side_h = ops.take(schedule.sides_h, phase)
        side_w = ops.take(schedule.sides_w, phase)
        top = _offset(u[0], h - side_h)
        left = _offset(u[1], w - side_w)
        window_1 = _rect(_window(top, side_h, h), _window(left, side_w, w))
        window_2 = _rect(
            _window(_offset(u[2], h - side_h), side_h, h),
            _window(_offset(u[3], w - side_w), side_w, w),
        )
        # The phase's pattern (split axis drawn), moved to the window.
        axis = ops.cast(u[4] < 0.5, "int32")
        pattern = ops.take(
            ops.reshape(schedule.patterns, (-1, h, w)), 2 * phase + axis, axis=0
        )
        pattern = ops.take(pattern, ops.mod(ops.arange(h) - top, h), axis=0)
        pattern = ops.take(pattern, ops.mod(ops.arange(w) - left, w), axis=1)
        pattern = pattern[None, :, :, None]

        delta = best - x
        in_window_1 = delta * window_1
        norm_window_1 = _norm(in_window_1, (1, 2))
        norm_image = _norm(delta, (1, 2, 3))
        norm_windows = _norm(delta * ops.maximum(window_1, window_2), (1, 2, 3))
        update = pattern * ops.reshape(signs, (-1, 1, 1, c))
        update = update + in_window_1 / (_TINY + norm_window_1)
        budget = ops.sqrt(
            ops.maximum(ops.square(eps) - ops.square(norm_image), 0.0) / c
            + ops.square(norm_windows)
        )
        update = update / (_TINY + _norm(update, (1, 2))) * budget
        delta = ops.where(window_1 > 0, update, delta * (1.0 - window_2))
        delta = delta / (_TINY + _norm(delta, (1, 2, 3)))
        return self.threat_model.clip(x + delta * eps)

    # ------------------------------------------------------ serialisation
    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            {
                "n_queries": self.n_queries,
                "p_init": self.p_init,
                "restarts": self.restarts,
                "rescale_schedule": self.rescale_schedule,
            }
        )
        return config
