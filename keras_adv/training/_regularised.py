"""Regularised objectives: TRADES and VAT.

Keras' own step trains on the clean batch; the objective's term (TRADES'
KL, VAT's LDS) joins the compiled loss in `compute_loss`. See
`_objective.py` for the contract.
"""

from collections.abc import Callable

import keras
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv.attacks import Attack
from keras_adv.attacks import IterativeAttack
from keras_adv.losses import _robust as robust
from keras_adv.training._objective import Objective
from keras_adv.training._objective import weighted_batch_mean

_TRADES_DEFAULT_STEPS = 10


def _divergence(
    objective: Objective,
    divergence: Callable[[Tensor, Tensor], Tensor],
    model: keras.Model,
    y_pred: Tensor,
    x_adv: Tensor,
) -> tuple[Tensor, Tensor]:
    """`(divergence(f(x), f(x_adv)) per sample, predictions on x_adv)`.

    Inside the tape: `f(x_adv)` in training mode, both sides through the
    objective's logits adapter (`head`), so probability outputs work too.
    """
    adv_pred = model(x_adv, training=True)
    adapter = objective.model_logits(model)
    return divergence(adapter.head(y_pred), adapter.head(adv_pred)), adv_pred


@register
class TRADES(Objective):
    """TRADES: `CE(f(x), y) + beta * KL(f(x) || f(x_adv))`.

    `x_adv` maximises the KL from `x + 0.001 N(0, 1)` with `attack`'s eps,
    norm, steps and step size (10 steps of `2.5 eps / 10` for a
    non-iterative attack). The compiled loss is computed on the clean batch
    by Keras' own step; the KL joins it in `compute_loss`, averaged like
    the compiled loss (`sum(w KL) / batch`).

    Args:
        attack: An untargeted attack supplying threat model and steps.
        beta: Float >= 0, the weight of the KL term. Defaults to `6.0`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> keras_adv.training.TRADES(keras_adv.attacks.PGD(eps=0.3), beta=6.0)
    TRADES(attack=PGD(...), training_mode_attack=False, beta=6.0)

    Reference:
        Zhang, Yu, Jiao, Xing, El Ghaoui and Jordan, "Theoretically
        Principled Trade-off between Robustness and Accuracy", ICML 2019,
        [arXiv:1901.08573](https://arxiv.org/abs/1901.08573).
    """

    trains_on_clean = True

    def __init__(
        self,
        attack: Attack,
        beta: float = 6.0,
        training_mode_attack: bool = False,
    ) -> None:
        super().__init__(attack, training_mode_attack=training_mode_attack)
        self.beta = _validation.check_number("beta", beta, minimum=0.0)

    def _steps_and_step_size(self, eps_b: Tensor) -> tuple[int, Tensor]:
        attack = self.train_attack
        if isinstance(attack, IterativeAttack):
            return attack.steps, attack.step_size_for(eps_b)
        return _TRADES_DEFAULT_STEPS, 2.5 / _TRADES_DEFAULT_STEPS * eps_b

    def adversarial_examples(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        model_logits = self.model_logits(model)
        x32 = ops.cast(x, "float32")
        eps32 = ops.cast(eps, "float32")
        clean_logits = model_logits(x32)
        eps_b = self.threat_model.eps_tensor(x32, eps32)
        steps, step_size = self._steps_and_step_size(eps_b)
        x_adv = robust.trades_perturbation(
            model_logits,
            x32,
            clean_logits,
            self.threat_model,
            eps32,
            steps,
            step_size,
            seed,
        )
        return ops.cast(ops.stop_gradient(x_adv), x.dtype)

    def extra_loss(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        y_pred: Tensor,
        sample_weight: Tensor | None,
        x_adv: Tensor,
        eps: Tensor | None = None,
        seed: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor | None]:
        term, adv_pred = _divergence(
            self, robust.trades_kl, model, y_pred, x_adv
        )
        return self.beta * weighted_batch_mean(term, sample_weight), adv_pred

    def get_config(self) -> Config:
        config = super().get_config()
        config["beta"] = self.beta
        return config


@register
class VAT(Objective):
    """Virtual adversarial training: compiled loss + `alpha * mean LDS`.

    The LDS is `KL(f(x) || f(x + r_adv))` with `r_adv` from
    `power_iterations` power iterations at finite-difference scale `xi`,
    scaled to the attack's eps. Semi-supervised: samples with label `-1`
    (sparse labels) or an all-zero one-hot row are unlabelled: they get no
    supervised loss and no metrics but still get the LDS term. Data
    without any labels trains on the LDS (and regularisers) alone; compile
    such a model without metrics.

    Args:
        attack: An attack supplying the threat model (eps, norm).
        alpha: Float >= 0, LDS weight. Defaults to `1.0`.
        xi: Float > 0, finite-difference scale (raised to `1e-2` under
            `mixed_float16`). Defaults to `1e-6`.
        power_iterations: Int >= 1. Defaults to `1`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> keras_adv.training.VAT(keras_adv.attacks.PGD(eps=2.0, norm="l2"),
    ...                        alpha=1.0).power_iterations
    1

    Reference:
        Miyato, Maeda, Koyama and Ishii, "Virtual Adversarial Training: A
        Regularization Method for Supervised and Semi-Supervised Learning", IEEE
        TPAMI 2018, [arXiv:1704.03976](https://arxiv.org/abs/1704.03976).
    """

    def __init__(
        self,
        attack: Attack,
        alpha: float = 1.0,
        xi: float = 1e-6,
        power_iterations: int = 1,
        training_mode_attack: bool = False,
    ) -> None:
        super().__init__(attack, training_mode_attack=training_mode_attack)
        self.alpha = _validation.check_number("alpha", alpha, minimum=0.0)
        self.xi = _validation.check_number("xi", xi, minimum=0.0, strict=True)
        self.power_iterations = _validation.check_int(
            "power_iterations", power_iterations, minimum=1
        )

    def needs_labels(self) -> bool:
        return False

    def adversarial_examples(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        model_logits = self.model_logits(model)
        x32 = ops.cast(x, "float32")
        xi = self.xi
        if model.dtype_policy.compute_dtype == "float16":
            xi = max(xi, 1e-2)
        x_adv = robust.virtual_adversarial_perturbation(
            model_logits,
            x32,
            model_logits(x32),
            self.threat_model,
            ops.cast(eps, "float32"),
            xi=xi,
            power_iterations=self.power_iterations,
            seed=seed,
        )
        return ops.cast(ops.stop_gradient(x_adv), x.dtype)

    def training_data(
        self,
        x: Tensor,
        y: Tensor | None,
        sample_weight: Tensor | None,
        x_adv: Tensor,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        if y is None:
            return x, None, sample_weight
        y, weight = labelled_mask(y, sample_weight)
        return x, y, weight

    def adversarial_predictions(
        self, x: Tensor, y_pred: Tensor
    ) -> Tensor | None:
        return None

    def extra_loss(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        y_pred: Tensor,
        sample_weight: Tensor | None,
        x_adv: Tensor,
        eps: Tensor | None = None,
        seed: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor | None]:
        term, adv_pred = _divergence(self, robust.vat_lds, model, y_pred, x_adv)
        return self.alpha * weighted_batch_mean(term, None), adv_pred

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            alpha=self.alpha, xi=self.xi, power_iterations=self.power_iterations
        )
        return config


def labelled_mask(
    y: Tensor, sample_weight: Tensor | None
) -> tuple[Tensor, Tensor]:
    """VAT labels: -1 (or an all-zero one-hot row) marks unlabelled samples.

    Returns `(y with -1 replaced by 0, sample_weight * labelled)`.
    """
    if len(y.shape) == 2 and y.shape[-1] not in (None, 1):
        labelled = ops.sum(ops.cast(y, "float32"), axis=-1) > 0
        y_safe = y
    else:
        labelled = ops.reshape(ops.cast(y, "int32"), [-1]) >= 0
        y_safe = ops.where(y >= 0, y, ops.zeros_like(y))
    mask = ops.cast(labelled, "float32")
    if sample_weight is None:
        return y_safe, mask
    return y_safe, ops.cast(ops.reshape(sample_weight, [-1]), "float32") * mask
