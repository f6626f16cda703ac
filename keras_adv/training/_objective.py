"""The `Objective` base class of adversarial-training objectives.

An objective says what one adversarial training step optimises. The
training engine (`AdversarialModel`, and the `AdversarialTraining` callback
that installs the same step on any model) calls three public methods:

1. `adversarial_examples(model, x, y, eps, seed)`: before the gradient tape,
   builds `x_adv` (no gradient flows through it).
2. `training_data(x, y, sample_weight, x_adv)`: the batch that Keras' own
   `train_step` then trains on (the substitution objectives put `x_adv`
   there; the regularised ones keep the clean batch).
3. `extra_loss(model, x, y, y_pred, sample_weight, x_adv)`: inside the
   tape, a term added to the compiled loss in `compute_loss` (TRADES' KL,
   VAT's LDS), with the predictions on `x_adv` for the adversarial metrics.

Keras keeps the compiled loss, regularisers, loss scaling, metrics and
distribution. The objectives themselves live in `_madry.py` (Madry,
FGSM-RS), `_regularised.py` (TRADES, VAT), `_fast.py` and `_max_loss.py`;
names in `_registry.py`.
"""

from typing import TypeVar

import keras
from keras import ops

from keras_adv import _validation
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.attacks import Attack
from keras_adv.attacks import ModelLogits
from keras_adv.threat_models import ThreatModel

_ObjectiveT = TypeVar("_ObjectiveT", bound="Objective")


def _check_attack(attack: object, owner: str) -> Attack:
    if not isinstance(attack, Attack):
        raise TypeError(
            _validation.invalid(
                "attack",
                "a keras_adv.attacks.Attack instance (e.g. "
                "keras_adv.attacks.PGD(eps=0.3))",
                attack,
            )
        )
    if attack.targeted:
        raise ValueError(
            f"{owner} needs an untargeted attack: with targeted=True the "
            "labels would be used as targets and the 'adversarial' step "
            "would move towards the correct class. Received: "
            f"attack={attack!r}"
        )
    return attack


def weighted_batch_mean(
    values: TensorLike, sample_weight: TensorLike | None
) -> Tensor:
    """`sum(values * w) / batch` (Keras' "sum_over_batch_size")."""
    values = ops.cast(values, "float32")
    if sample_weight is not None:
        values = values * ops.cast(ops.reshape(sample_weight, [-1]), "float32")
    batch = ops.cast(ops.shape(values)[0], "float32")
    return ops.sum(values) / ops.maximum(batch, 1.0)


class Objective:
    """Base class of adversarial-training objectives.

    Subclasses override any of the three hooks; the defaults train on
    `x_adv` from `self.attack` (the Madry substitution) and add no term.

    Args:
        attack: An untargeted `keras_adv.attacks.Attack`, which supplies the
            threat model (eps, norm, value range).
        training_mode_attack: Bool, run the attack's forward passes with
            `training=True` (BatchNorm batch statistics, dropout). Defaults
            to `False`.
    """

    #: Whether the objective writes the whole training step in a method
    #: `train_step(model, x, y, sample_weight, eps, seed) -> (logs,
    #: adv_pred)` instead of substituting the batch of the model's own
    #: `train_step` (Free-m does: it reuses the input gradient of the
    #: weight update's backward pass).
    replaces_train_step = False

    #: Whether Keras' step trains on the clean batch, the objective adding
    #: its own term in `extra_loss` (TRADES, verified training): then
    #: `training_data` is the clean batch and no part of `y_pred` is
    #: adversarial.
    trains_on_clean = False

    def __init__(
        self, attack: Attack, training_mode_attack: bool = False
    ) -> None:
        self.attack = _check_attack(attack, type(self).__name__)
        self.training_mode_attack = _validation.check_bool(
            "training_mode_attack", training_mode_attack
        )
        self.train_attack = self._make_train_attack(attack)

    def _make_train_attack(self, attack: Attack) -> Attack:
        """The attack the step runs: the user's own, not a copy.

        A copy would lose what its config cannot carry (a callable loss,
        a generator's weights); the training mode is passed per call
        instead (`perturb(..., training=)`). Objectives that run a
        different attack built from the user's settings (the FGSM
        objectives) override this.
        """
        return attack

    def model_logits(self, model: keras.Model) -> ModelLogits:
        """The attack's logits adapter for `model`, in the training mode."""
        return self.train_attack.model_logits(
            model, training=self.training_mode_attack
        )

    @property
    def threat_model(self) -> ThreatModel:
        return self.attack.threat_model

    # -------------------------------------------------------------- hooks
    def adversarial_examples(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        """`x_adv` for the batch (graph-safe, before the tape).

        The training step has already checked the batch (input types,
        NaN, value range and labels, in the graph), so the attack's own
        copy of those checks is skipped (`check=False`).
        """
        return self.train_attack.perturb(
            model,
            x,
            y,
            eps=eps,
            seed=seed,
            check=False,
            training=self.training_mode_attack,
        )

    def training_data(
        self,
        x: Tensor,
        y: Tensor | None,
        sample_weight: Tensor | None,
        x_adv: Tensor,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The `(x, y, sample_weight)` Keras' `train_step` trains on."""
        if self.trains_on_clean:
            return x, y, sample_weight
        return x_adv, y, sample_weight

    def adversarial_predictions(
        self, x: Tensor, y_pred: Tensor
    ) -> Tensor | None:
        """The part of the step's `y_pred` made on `x_adv`, or None."""
        return None if self.trains_on_clean else y_pred

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
        """`(term, adv_pred)`: a loss term added in `compute_loss`.

        Called inside the gradient tape with the network being trained
        (`model`: the compiled model, or an `AdversarialModel`'s
        `base_model`), the clean batch (`x`, `y`,
        `sample_weight` as given to `train_step`), Keras' predictions
        `y_pred` on the training batch, `x_adv`, the eps in use and the
        step's stateless seed. `term` is a scalar averaged like the
        compiled loss (see `weighted_batch_mean`); the engine scales it for
        distribution. `adv_pred` (predictions on `x_adv`, or None) feeds
        the adversarial metrics. Returns `(None, None)` when the objective
        adds nothing.
        """
        return None, None

    def needs_labels(self) -> bool:
        """Whether batches must carry labels."""
        return True

    def check_model(self, model: keras.Model, network: keras.Model) -> None:
        """Raises if this objective cannot train `model`; by default no check.

        Called when training starts (`AdversarialTraining.on_train_begin`,
        the first trace of `AdversarialModel.train_step`), with the compiled
        model and the network the hooks see (`model` itself, or an
        `AdversarialModel`'s `base_model`).
        """

    # ------------------------------------------------------ serialisation
    def get_config(self) -> Config:
        return {
            "attack": keras.saving.serialize_keras_object(self.attack),
            "training_mode_attack": self.training_mode_attack,
        }

    @classmethod
    def from_config(cls: type[_ObjectiveT], config: Config) -> _ObjectiveT:
        config = dict(config)
        config["attack"] = keras.saving.deserialize_keras_object(
            config["attack"]
        )
        return cls(**config)

    def __repr__(self) -> str:
        config = self.get_config()
        config["attack"] = self.attack
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return f"{type(self).__name__}({args})"
