"""`IterativeAttack`: the Lp-ball search shared by PGD, BIM, MIM and FGSM.

One run is: an optional random start in the ball, then `steps` times
`x <- project(x + step_size * direction)`; restarts keep the per-sample
strongest result. Subclasses change the update through two public hooks,
`init_state` and `step`, and the default step size through
`relative_step_size`.
"""

from typing import Any

from keras import ops

from keras_adv import _random
from keras_adv import _validation
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Tensor
from keras_adv.attacks._base import Attack
from keras_adv.attacks._logits import ModelLogits


class IterativeAttack(Attack):
    """Base class of gradient attacks that iterate ascent and projection.

    `generate` runs `restarts` independent runs. Each run starts from
    `threat_model.random_start` (if `random_start`) with its own stateless
    seed (the attack's seed folded with the restart index, so restarts
    draw distinct starts on every seeding path), then takes `steps` steps
    `x <- threat_model.project(step(x, grad, state, step_size))`. Per
    sample the strongest run is kept: a successful one over an unsuccessful
    one, then the higher objective. Restart 0 is the same draw as a single
    run with the same seed, so restarts never make the attack weaker.

    Hooks for subclasses (all graph-safe):

    * `init_state(x)`: extra loop state (e.g. a momentum buffer); default
      `()`.
    * `step(x_adv, grad, state, step_size)`: one update before projection;
      default `x_adv + step_size * threat_model.ascent_direction(grad)`.
    * `relative_step_size`: the step size in units of eps used when
      `step_size` is None; default `2.5 / steps` (Madry et al.).

    Args:
        eps: Float >= 0 (or a variable). Defaults to `0.3`.
        steps: Int >= 1, iterations per run. Defaults to `10`.
        step_size: Float > 0 in input units, or None for
            `relative_step_size * eps` (computed from the eps in use, so eps
            schedules scale it). Changing it retraces the attack graph
            once. Defaults to `None`.
        random_start: Bool, start from a uniform draw in the ball. Defaults
            to `True`.
        restarts: Int >= 1, independent runs; the strongest is kept per
            sample. Defaults to `1`.
        **kwargs: The `Attack` arguments (norm, value_range, targeted, loss,
            from_logits, training, seed, jit_compile).

    Example:

    A signed-gradient step with a fixed decay (a new attack in a few lines):

    >>> import numpy as np, keras, keras_adv
    >>> class DecayingPGD(keras_adv.attacks.IterativeAttack):
    ...     def init_state(self, x):
    ...         return (keras.ops.ones(()),)
    ...     def step(self, x_adv, grad, state, step_size):
    ...         (scale,) = state
    ...         direction = self.threat_model.ascent_direction(grad)
    ...         return x_adv + scale * step_size * direction, (scale * 0.9,)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.full((2, 4), 0.5, "float32")
    >>> x_adv = DecayingPGD(eps=0.1, steps=3, seed=0)(model, x)
    >>> bool(np.abs(np.asarray(x_adv) - x).max() <= 0.1 + 1e-6)
    True
    """

    def __init__(
        self,
        eps: Eps = 0.3,
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(eps=eps, **kwargs)
        self.steps = _validation.check_int("steps", steps, minimum=1)
        self.step_size = step_size
        self.random_start = _validation.check_bool("random_start", random_start)
        self.restarts = _validation.check_int("restarts", restarts, minimum=1)

    @property
    def step_size(self) -> float | None:
        """Step size in input units, or None for the relative default."""
        return self._step_size

    @step_size.setter
    def step_size(self, value: float | None) -> None:
        if value is not None:
            value = _validation.check_number(
                "step_size", value, minimum=0.0, strict=True
            )
        self._step_size = value

    @property
    def relative_step_size(self) -> float:
        """Default step size in units of eps: `2.5 / steps`."""
        return 2.5 / self.steps

    def step_size_for(self, eps: Eps) -> Tensor:
        """The step size used at radius `eps` (a float or tensor)."""
        if self.step_size is not None:
            return ops.cast(self.step_size, "float32") + 0.0 * ops.cast(
                eps, "float32"
            )
        return self.relative_step_size * ops.cast(eps, "float32")

    # --------------------------------------------------------------- hooks
    def init_state(self, x: Tensor) -> tuple[Tensor, ...]:
        """Extra loop state for `step` (default: none)."""
        return ()

    def step(
        self,
        x_adv: Tensor,
        grad: Tensor,
        state: tuple[Tensor, ...],
        step_size: Tensor,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One ascent step; returns `(x_adv, state)` before projection."""
        direction = self.threat_model.ascent_direction(grad)
        return x_adv + step_size * direction, state

    # ---------------------------------------------------------------- run
    def run_once(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        step_size: Tensor,
        seed: Tensor,
    ) -> Tensor:
        """One run from one start (graph-safe); returns the final iterate.

        Args:
            model_logits: The `ModelLogits` adapter.
            x: Float32 clean inputs.
            y: Int32 labels or targets `(batch,)`.
            eps: Float32 radius, scalar or `(batch,)`.
            step_size: Float32 step size broadcastable to `x`.
            seed: `(2,)` stateless seed of this run.
        """
        tm = self.threat_model
        x_adv = (
            tm.random_start(x, seed=seed, eps=eps) if self.random_start else x
        )

        def body(
            i: int | Tensor, carry: tuple[Tensor, tuple[Tensor, ...]]
        ) -> tuple[Tensor, tuple[Tensor, ...]]:
            x_adv, state = carry
            _, grad = self.objective_and_gradient(model_logits, x_adv, y)
            x_adv, state = self.step(x_adv, grad, state, step_size)
            return tm.project(x_adv, x, eps=eps), state

        carry = (x_adv, self.init_state(x))
        if self.steps == 1:
            return body(0, carry)[0]
        return ops.fori_loop(0, self.steps, body, carry)[0]

    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        eps_b = self.threat_model.eps_tensor(x, eps)
        step_size = self.step_size_for(eps_b)
        x_adv = self.run_once(
            model_logits, x, y, eps, step_size, _random.fold_seed(seed, 0)
        )
        if self.restarts == 1:
            return x_adv
        best_obj, best_ok = self._score(model_logits, x_adv, y)
        expand = [-1] + [1] * (len(x.shape) - 1)
        for restart in range(1, self.restarts):
            candidate = self.run_once(
                model_logits,
                x,
                y,
                eps,
                step_size,
                _random.fold_seed(seed, restart),
            )
            obj, ok = self._score(model_logits, candidate, y)
            better = ops.logical_or(
                ops.logical_and(ok, ops.logical_not(best_ok)),
                ops.logical_and(ops.equal(ok, best_ok), obj > best_obj),
            )
            x_adv = ops.where(ops.reshape(better, expand), candidate, x_adv)
            best_obj = ops.where(better, obj, best_obj)
            best_ok = ops.logical_or(best_ok, ok)
        return x_adv

    def _score(
        self, model_logits: ModelLogits, x_adv: Tensor, y: Tensor
    ) -> tuple[Tensor, Tensor]:
        logits = model_logits(x_adv)
        return self.objective(logits, y), self.is_successful(logits, y)

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            {
                "steps": self.steps,
                "step_size": self.step_size,
                "random_start": self.random_start,
                "restarts": self.restarts,
            }
        )
        return config
