"""Substitution objectives: Madry/PGD and FGSM with a random start.

The step trains on `x_adv` (or a weighted mix of `x` and `x_adv`) through
Keras' own `train_step`; see `_objective.py` for the contract.
"""

from typing import cast

import keras
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._outputs import sparse_labels
from keras_adv._types import Config
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv.attacks import FGSM
from keras_adv.attacks import Attack
from keras_adv.training._objective import Objective


@register
class Madry(Objective):
    """Train on adversarial examples: the PGD/Madry substitution.

    With `adv_weight=1` the step trains on `x_adv` only (Madry et al.
    2018); with `0 < adv_weight < 1` on `(1 - a) L(x) + a L(x_adv)`
    (Goodfellow et al. 2015 use `a = 0.5`): Keras' step sees `[x; x_adv]`
    with sample weights `2(1 - a), 2a`, so under the default
    `"sum_over_batch_size"` reduction the clean part keeps its scale;
    `adv_weight=0` is plain training (the attack still runs for the
    metrics).

    Args:
        attack: An untargeted attack, e.g. `PGD(eps=0.3, steps=7)`.
        adv_weight: Float in `[0, 1]`. Defaults to `1.0`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> objective = keras_adv.training.Madry(
    ...     keras_adv.attacks.PGD(eps=0.3, steps=7), adv_weight=0.5)
    >>> objective.adv_weight
    0.5

    Reference:
        Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning
        Models Resistant to Adversarial Attacks", ICLR 2018,
        [arXiv:1706.06083](https://arxiv.org/abs/1706.06083). Goodfellow, Shlens
        and Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR
        2015, [arXiv:1412.6572](https://arxiv.org/abs/1412.6572).
    """

    def __init__(
        self,
        attack: Attack,
        adv_weight: float = 1.0,
        training_mode_attack: bool = False,
    ) -> None:
        super().__init__(attack, training_mode_attack=training_mode_attack)
        adv_weight = _validation.check_number(
            "adv_weight", adv_weight, minimum=0.0
        )
        if adv_weight > 1.0:
            raise ValueError(
                _validation.invalid(
                    "adv_weight", "a number in [0, 1]", adv_weight
                )
            )
        self.adv_weight = adv_weight

    def training_data(
        self,
        x: Tensor,
        y: Tensor | None,
        sample_weight: Tensor | None,
        x_adv: Tensor,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        a = self.adv_weight
        if a == 1.0:
            return x_adv, y, sample_weight
        if a == 0.0:
            return x, y, sample_weight
        batch = ops.shape(x)[0]
        if sample_weight is None:
            sw = ops.ones((batch,), "float32")
        else:
            sw = ops.cast(ops.reshape(sample_weight, [-1]), "float32")
        weights = ops.concatenate([2.0 * (1.0 - a) * sw, 2.0 * a * sw], 0)
        x_cat = ops.concatenate([x, ops.cast(x_adv, x.dtype)], axis=0)
        y_cat = ops.concatenate([y, y], axis=0)
        return x_cat, y_cat, weights

    def adversarial_predictions(
        self, x: Tensor, y_pred: Tensor
    ) -> Tensor | None:
        a = self.adv_weight
        if a == 1.0:
            return y_pred
        if a == 0.0:
            return None
        return y_pred[ops.shape(x)[0] :]

    def get_config(self) -> Config:
        config = super().get_config()
        config["adv_weight"] = self.adv_weight
        return config


class FGSMObjective(Madry):
    """Base of objectives that train on one FGSM step (internal).

    The attack is FGSM, with a random start in the ball when the class sets
    `random_start`, and a step of `self.step_factor * eps` projected back
    onto the ball, built from `attack`'s threat model, loss and
    `from_logits`. Subclasses set `random_start` and `self.step_factor`.
    """

    random_start = False
    step_factor: float  # set by subclasses
    train_attack: FGSM  # built by _make_train_attack

    def _make_train_attack(self, attack: Attack) -> FGSM:
        train_attack = FGSM(
            eps=1.0,
            norm=cast(Norm, attack.norm),
            value_range=attack.value_range,
            loss=attack.loss,
            random_start=self.random_start,
            from_logits=attack.from_logits,
            training=self.training_mode_attack,
            seed=attack.seed,
        )
        train_attack.threat_model = attack.threat_model  # live eps
        return train_attack

    def adversarial_examples(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        attack = self.train_attack
        x32 = ops.cast(x, "float32")
        eps32 = ops.cast(eps, "float32")
        eps_b = attack.threat_model.eps_tensor(x32, eps32)
        x_adv = attack.run_once(
            self.model_logits(model),
            x32,
            sparse_labels(y),
            eps32,
            self.step_factor * eps_b,
            seed,
        )
        return ops.cast(ops.stop_gradient(x_adv), x.dtype)


@register
class FGSMRS(FGSMObjective):
    """FGSM from a uniform random start ("fast is better than free").

    The attack is FGSM with a random start in the ball and a step of
    `step_factor * eps` (1.25 in Wong et al.), projected back onto the
    ball, built from `attack`'s eps, norm, value range and loss. Large
    steps overfit catastrophically (robust accuracy collapses within an
    epoch): watch it with `keras_adv.callbacks.OverfittingGuard`.

    Args:
        attack: An untargeted attack supplying the threat model and loss.
        adv_weight: Float in `[0, 1]`. Defaults to `1.0`.
        step_factor: Float > 0, the FGSM step in units of eps. Defaults to
            `1.25`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> objective = keras_adv.training.FGSMRS(
    ...     keras_adv.attacks.PGD(eps=0.1))
    >>> type(objective.train_attack).__name__, objective.step_factor
    ('FGSM', 1.25)

    Reference:
        Wong, Rice and Kolter, "Fast is better than free: Revisiting adversarial
        training", ICLR 2020,
        [arXiv:2001.03994](https://arxiv.org/abs/2001.03994).
    """

    random_start = True

    def __init__(
        self,
        attack: Attack,
        adv_weight: float = 1.0,
        step_factor: float = 1.25,
        training_mode_attack: bool = False,
    ) -> None:
        self.step_factor = _validation.check_number(
            "step_factor", step_factor, minimum=0.0, strict=True
        )
        super().__init__(
            attack,
            adv_weight=adv_weight,
            training_mode_attack=training_mode_attack,
        )

    def get_config(self) -> Config:
        config = super().get_config()
        config["step_factor"] = self.step_factor
        return config
