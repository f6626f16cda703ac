"""Projected gradient attacks: PGD, BIM and the shared iterative engine."""

from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv.attacks.base import Attack


class IterativeAttack(Attack):
    """Shared engine of gradient attacks that iterate ascent and projection.

    One run is: optional random start, then `steps` times
    `x <- project(x + step_size * ascent_direction(grad))`. With `restarts`
    > 1 the run is repeated from new random starts and, per sample, the
    strongest result is kept: a successful one over an unsuccessful one,
    then the higher objective. The first restart is the same draw as a
    single run with the same seed, so restarts never make the attack
    weaker.

    Subclasses may override `_step` (the update from a gradient) and
    `_init_state` (extra loop state, e.g. momentum), and set
    `_default_step_factor` (the step size relative to eps when `step_size`
    is None).
    """

    _structural = Attack._structural + ("steps", "restarts", "random_start")
    _default_step_factor = 2.5  # divided by `steps`

    def __init__(
        self,
        eps=0.3,
        steps=10,
        step_size=None,
        random_start=True,
        restarts=1,
        **kwargs,
    ):
        super().__init__(eps=eps, **kwargs)
        self.steps = _validation.check_int("steps", steps, minimum=1)
        self.step_size = step_size
        self.random_start = self._check_bool("random_start", random_start)
        self.restarts = _validation.check_int("restarts", restarts, minimum=1)

    @property
    def step_size(self):
        """Step size in input units, or None for the relative default."""
        return self._step_size

    @step_size.setter
    def step_size(self, value):
        if value is not None:
            value = _validation.check_number(
                "step_size", value, minimum=0.0, strict=True
            )
        self._step_size = value

    def default_step_size(self, eps):
        """The step size used when `step_size` is None."""
        return self._step_factor() * eps

    def _step_factor(self):
        """Default step size relative to eps."""
        return self._default_step_factor / self.steps

    def _init_state(self, x):
        return ()

    def _step(self, x_adv, grad, state, step_size):
        """One ascent step; returns `(x_adv, state)` before projection."""
        direction = self.threat_model.ascent_direction(grad)
        return x_adv + step_size * direction, state

    def _single_run(self, logits_fn, x, y, eps, step_size, seed):
        tm = self.threat_model
        if self.random_start:
            x_adv = tm.random_start(x, seed=seed, eps=eps)
        else:
            x_adv = x

        def body(i, carry):
            x_adv, state = carry
            _, grad = self._loss_and_gradient(logits_fn, x_adv, y)
            x_adv, state = self._step(x_adv, grad, state, step_size)
            return tm.project(x_adv, x, eps=eps), state

        if self.steps == 1:
            x_adv, _ = body(0, (x_adv, self._init_state(x)))
        else:
            x_adv, _ = ops.fori_loop(
                0, self.steps, body, (x_adv, self._init_state(x))
            )
        return x_adv

    def _attack(self, logits_fn, x, y, eps, step_size, seed):
        eps_b = self.threat_model.eps_tensor(x, eps)
        step_size = self._resolve_step_size(
            step_size, eps_b, self._step_factor()
        )
        x_adv = self._single_run(logits_fn, x, y, eps, step_size, seed)
        if self.restarts == 1:
            return x_adv
        best_obj, best_ok = self._objective_and_success(logits_fn, x_adv, y)
        expand = [-1] + [1] * (len(x.shape) - 1)
        for _ in range(self.restarts - 1):
            cand = self._single_run(logits_fn, x, y, eps, step_size, seed)
            obj, ok = self._objective_and_success(logits_fn, cand, y)
            better = ops.logical_or(
                ops.logical_and(ok, ops.logical_not(best_ok)),
                ops.logical_and(ops.equal(ok, best_ok), obj > best_obj),
            )
            x_adv = ops.where(ops.reshape(better, expand), cand, x_adv)
            best_obj = ops.where(better, obj, best_obj)
            best_ok = ops.logical_or(best_ok, ok)
        return x_adv

    def get_config(self):
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


@register
class PGD(IterativeAttack):
    """Projected Gradient Descent (Madry et al. 2018), L-inf or L2.

    Maximises the loss over the threat model by `steps` iterations of
    `x <- Proj(x + step_size * d(grad))`, where `d` is `sign` (L-inf) or
    `grad / ||grad||_2` (L2), from a uniform random start in the ball. With
    `restarts > 1`, the strongest of several runs is kept per sample.

    Distance measure: L-inf or L2. Defaults follow Madry et al. for MNIST
    (eps=0.3, random start) with `step_size = 2.5 * eps / steps`.

    Args:
        eps: Float >= 0 (or a variable): radius of the ball in input units.
            Defaults to `0.3`.
        steps: Int >= 1, number of iterations. Defaults to `10`.
        step_size: Float > 0 or None. None means `2.5 * eps / steps`,
            computed from the eps in use (so eps schedules scale it).
            Defaults to `None`.
        random_start: Bool, start from a uniform draw in the ball. Defaults
            to `True`.
        restarts: Int >= 1, number of random restarts. Defaults to `1`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        targeted: Bool; if True `y` holds target classes. Defaults to `False`.
        loss: `"ce"` or `"margin"` (C&W). Defaults to `"ce"`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool, `training` flag of the forward passes. Defaults to
            `False`.
        seed: Int or None. Defaults to `None`.
        jit_compile: Bool, XLA-compile the attack. Defaults to `False`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).uniform(size=(8, 4)).astype("float32")
    >>> attack = keras_adv.attacks.PGD(eps=0.1, steps=5, seed=0)
    >>> x_adv = attack(model, x)
    >>> bool(np.abs(np.asarray(x_adv) - x).max() <= 0.1 + 1e-6)
    True

    Reference:
        Madry et al., "Towards Deep Learning Models Resistant to Adversarial
        Attacks", ICLR 2018, arXiv:1706.06083.
    """

    def __init__(
        self,
        eps=0.3,
        steps=10,
        step_size=None,
        random_start=True,
        restarts=1,
        norm="linf",
        value_range=(0.0, 1.0),
        targeted=False,
        loss="ce",
        from_logits=None,
        training=False,
        seed=None,
        jit_compile=False,
    ):
        super().__init__(
            eps=eps,
            steps=steps,
            step_size=step_size,
            random_start=random_start,
            restarts=restarts,
            norm=norm,
            value_range=value_range,
            targeted=targeted,
            loss=loss,
            from_logits=from_logits,
            training=training,
            seed=seed,
            jit_compile=jit_compile,
        )


@register
class BIM(IterativeAttack):
    """Basic Iterative Method (Kurakin et al. 2017): PGD from `x` itself.

    The iterative FGSM: `steps` signed-gradient (or L2-normalised) steps
    projected onto the ball, with no random start and one run. Distance
    measure: L-inf (or L2).

    Args:
        eps: Float >= 0 (or a variable): radius of the ball. Defaults to
            `0.3`.
        steps: Int >= 1. Defaults to `10`.
        step_size: Float > 0 or None for `2.5 * eps / steps`. Defaults to
            `None`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        targeted: Bool. Defaults to `False`.
        loss: `"ce"` or `"margin"`. Defaults to `"ce"`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool. Defaults to `False`.
        seed: Unused (BIM is deterministic); kept for a uniform signature.
        jit_compile: Bool. Defaults to `False`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.full((2, 4), 0.5, "float32")
    >>> x_adv = keras_adv.attacks.BIM(eps=0.05, steps=3)(model, x)
    >>> tuple(x_adv.shape)
    (2, 4)

    Reference:
        Kurakin, Goodfellow and Bengio, "Adversarial examples in the
        physical world", ICLR workshop 2017, arXiv:1607.02533.
    """

    def __init__(
        self,
        eps=0.3,
        steps=10,
        step_size=None,
        norm="linf",
        value_range=(0.0, 1.0),
        targeted=False,
        loss="ce",
        from_logits=None,
        training=False,
        seed=None,
        jit_compile=False,
    ):
        super().__init__(
            eps=eps,
            steps=steps,
            step_size=step_size,
            random_start=False,
            restarts=1,
            norm=norm,
            value_range=value_range,
            targeted=targeted,
            loss=loss,
            from_logits=from_logits,
            training=training,
            seed=seed,
            jit_compile=jit_compile,
        )

    def get_config(self):
        config = super().get_config()
        del config["random_start"], config["restarts"]
        return config


@register
class MIM(IterativeAttack):
    """Momentum Iterative Method (Dong et al. 2018).

    Accumulates a velocity of L1-normalised gradients,
    `g <- decay * g + grad / mean(|grad|)`, and steps along the ascent
    direction of `g` (its sign for L-inf), projecting onto the ball. The
    momentum stabilises the update direction and improves transfer.
    Defaults from the paper: `decay=1.0`, `step_size = eps / steps`, no
    random start.

    Args:
        eps: Float >= 0 (or a variable): radius of the ball. Defaults to
            `0.3`.
        steps: Int >= 1. Defaults to `10`.
        step_size: Float > 0 or None for `eps / steps`. Defaults to `None`.
        decay: Float >= 0, momentum decay factor mu. Defaults to `1.0`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        targeted: Bool. Defaults to `False`.
        loss: `"ce"` or `"margin"`. Defaults to `"ce"`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool. Defaults to `False`.
        seed: Unused (MIM is deterministic).
        jit_compile: Bool. Defaults to `False`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.full((2, 4), 0.5, "float32")
    >>> x_adv = keras_adv.attacks.MIM(eps=0.1, steps=4)(model, x)
    >>> float(np.abs(np.asarray(x_adv) - x).max()) <= 0.1 + 1e-6
    True

    Reference:
        Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR
        2018, arXiv:1710.06081.
    """

    _structural = IterativeAttack._structural + ("decay",)
    _default_step_factor = 1.0

    def __init__(
        self,
        eps=0.3,
        steps=10,
        step_size=None,
        decay=1.0,
        norm="linf",
        value_range=(0.0, 1.0),
        targeted=False,
        loss="ce",
        from_logits=None,
        training=False,
        seed=None,
        jit_compile=False,
    ):
        super().__init__(
            eps=eps,
            steps=steps,
            step_size=step_size,
            random_start=False,
            restarts=1,
            norm=norm,
            value_range=value_range,
            targeted=targeted,
            loss=loss,
            from_logits=from_logits,
            training=training,
            seed=seed,
            jit_compile=jit_compile,
        )
        self.decay = _validation.check_number("decay", decay, minimum=0.0)

    def _init_state(self, x):
        return (ops.zeros_like(x),)

    def _step(self, x_adv, grad, state, step_size):
        (velocity,) = state
        axes = list(range(1, len(grad.shape)))
        l1 = ops.mean(ops.abs(grad), axis=axes, keepdims=True)
        velocity = self.decay * velocity + grad / ops.maximum(l1, 1e-12)
        direction = self.threat_model.ascent_direction(velocity)
        return x_adv + step_size * direction, (velocity,)

    def get_config(self):
        config = super().get_config()
        del config["random_start"], config["restarts"]
        config["decay"] = self.decay
        return config


__all__ = ["BIM", "MIM", "PGD", "IterativeAttack"]
