"""Projected gradient attacks: PGD, BIM and MIM."""

from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import AttackLoss
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv._types import ValueRange
from keras_adv.attacks._iterative import IterativeAttack


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
        loss: `"ce"`, `"margin"` (C&W) or a callable (see
            `keras_adv.losses.get`). Defaults to `"ce"`.
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
        Attacks", ICLR 2018,
        [arXiv:1706.06083](https://arxiv.org/abs/1706.06083).
    """

    def __init__(
        self,
        eps: Eps = 0.3,
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
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
        Kurakin, Goodfellow and Bengio, "Adversarial examples in the physical
        world", ICLR workshop 2017,
        [arXiv:1607.02533](https://arxiv.org/abs/1607.02533).
    """

    def __init__(
        self,
        eps: Eps = 0.3,
        steps: int = 10,
        step_size: float | None = None,
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

    def get_config(self) -> Config:
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
        2018, [arXiv:1710.06081](https://arxiv.org/abs/1710.06081).
    """

    def __init__(
        self,
        eps: Eps = 0.3,
        steps: int = 10,
        step_size: float | None = None,
        decay: float = 1.0,
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

    @property
    def relative_step_size(self) -> float:
        """`1 / steps` (Dong et al.: `step_size = eps / steps`)."""
        return 1.0 / self.steps

    def init_state(self, x: Tensor) -> tuple[Tensor, ...]:
        return (ops.zeros_like(x),)

    def step(
        self,
        x_adv: Tensor,
        grad: Tensor,
        state: tuple[Tensor, ...],
        step_size: Tensor,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        (velocity,) = state
        axes = list(range(1, len(grad.shape)))
        l1 = ops.mean(ops.abs(grad), axis=axes, keepdims=True)
        velocity = self.decay * velocity + grad / ops.maximum(l1, 1e-12)
        direction = self.threat_model.ascent_direction(velocity)
        return x_adv + step_size * direction, (velocity,)

    def get_config(self) -> Config:
        config = super().get_config()
        del config["random_start"], config["restarts"]
        config["decay"] = self.decay
        return config
