"""The Fast Gradient Sign Method and its L2 variant (FGM)."""

from keras_adv._api import register
from keras_adv._types import AttackLoss
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import ValueRange
from keras_adv.attacks._iterative import IterativeAttack


@register
class FGSM(IterativeAttack):
    """Fast Gradient Sign Method (Goodfellow et al. 2015); FGM for L2.

    One step of size `eps` along the steepest-ascent direction of the loss:
    `x_adv = clip(x + eps * sign(grad_x L(f(x), y)))` for L-inf, and
    `x + eps * grad / ||grad||_2` for `norm="l2"` (the Fast Gradient
    Method). With `random_start=True` it is FGSM-RS (Wong, Rice and Kolter
    2020): a uniform start in the ball, then a step of `1.25 * eps`,
    projected back onto the ball.

    Distance measure: L-inf (or L2).

    Args:
        eps: Float >= 0 (or a variable): radius of the ball in input units.
            Defaults to `0.3`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        targeted: Bool; if True, step towards the target classes in `y`.
            Defaults to `False`.
        loss: `"ce"` or `"margin"`. Defaults to `"ce"`.
        random_start: Bool, FGSM-RS. Defaults to `False`.
        step_size: Float > 0 or None for `eps` (or `1.25 * eps` with a
            random start). Defaults to `None`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool. Defaults to `False`.
        seed: Int or None (used by the random start). Defaults to `None`.
        jit_compile: Bool. Defaults to `False`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> model.set_weights([np.array([[1., -1.], [0., 0.], [-1., 1.]]),
    ...                    np.zeros(2)])
    >>> x = np.full((1, 3), 0.5, "float32")
    >>> x_adv = keras_adv.attacks.FGSM(eps=0.1)(model, x, np.array([0]))
    >>> np.asarray(x_adv).round(3)
    array([[0.4, 0.5, 0.6]], dtype=float32)

    Reference:
        Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial
        Examples", ICLR 2015,
        [arXiv:1412.6572](https://arxiv.org/abs/1412.6572). Wong, Rice and
        Kolter, "Fast is better than free", ICLR 2020,
        [arXiv:2001.03994](https://arxiv.org/abs/2001.03994).
    """

    def __init__(
        self,
        eps: Eps = 0.3,
        norm: Norm = "linf",
        value_range: ValueRange = (0.0, 1.0),
        targeted: bool = False,
        loss: AttackLoss = "ce",
        random_start: bool = False,
        step_size: float | None = None,
        from_logits: bool | None = None,
        training: bool = False,
        seed: int | None = None,
        jit_compile: bool = False,
    ) -> None:
        super().__init__(
            eps=eps,
            steps=1,
            step_size=step_size,
            random_start=random_start,
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

    @property
    def relative_step_size(self) -> float:
        """`1.25` with a random start (FGSM-RS), else `1`."""
        return 1.25 if self.random_start else 1.0

    def get_config(self) -> Config:
        config = super().get_config()
        del config["steps"], config["restarts"]
        return config
