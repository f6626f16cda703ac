"""`AdversarialModel`: adversarial training on Keras' public overrides."""

from collections.abc import Mapping
from collections.abc import MutableMapping
from typing import Any
from typing import TypeVar

import keras

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.attacks import Attack
from keras_adv.models import _attack_state as attack_state
from keras_adv.training import Objective
from keras_adv.training import _registry as objectives
from keras_adv.training._step import ADV_ACCURACY
from keras_adv.training._step import ADV_LOSS
from keras_adv.training._step import AdversarialStep

_ModelT = TypeVar("_ModelT", bound="AdversarialModel")


@register
class AdversarialModel(keras.Model):
    """Wraps a classifier so that `compile`/`fit` train it adversarially.

    Written only against Keras' public override points: `train_step`
    builds `x_adv` with the objective (before the gradient tape) and calls
    Keras' own `train_step` on the objective's batch; objectives with an
    extra term (TRADES, VAT) add it in `compute_loss`, the way
    `keras.distillation.Distiller` adds its terms; the adversarial metrics
    come from `compute_metrics` and two trackers that are part of
    `metrics` (reset every epoch with the compiled metrics). Keras keeps
    loss scaling, regularisers, metrics and distribution.

    Logs name what they measure, each once: `loss` is the loss being
    minimised and `adv_accuracy` the accuracy on `x_adv`. Trained on
    `x_adv` alone (the default objective), the compiled metrics measured
    `x_adv` and carry an `adv_` prefix; otherwise (TRADES, VAT,
    `adv_weight < 1`) they keep their names and `adv_loss` is added (see
    `keras_adv.callbacks.AdversarialTraining`).

    `call` is `base_model`'s forward pass; `evaluate`/`predict` are clean.
    After training, deploy `base_model` (the plain model, with the trained
    weights). The wrapper saves and loads as `.keras` (the objective and its
    attack are part of its config; the weights of networks the attack
    holds, such as a `GeneratorAttack`'s generator or a `LatentPGD`'s
    CVAE, are saved with the model's, so a reloaded model attacks with
    the trained ones). For an eps warm-up give the attack a
    `keras.Variable` eps and change it from a callback (no retracing), or
    use the `AdversarialTraining` callback.

    Args:
        base_model: A Keras classifier with one input and one output of
            shape `(batch, classes)` (logits or probabilities).
        attack: A `keras_adv.attacks.Attack`, or None when `objective` is an
            `Objective` instance (which carries its attack).
        objective: An `Objective` (e.g. `keras_adv.training.TRADES(attack,
            beta=6)`) or a shorthand: `"adversarial"`, `"fgsm-rs"`,
            `"trades"`, `"vat"`, `"ibp"`, `"crown_ibp"`, ... (see
            `keras_adv.training.get`). Defaults to `"adversarial"`.
        **kwargs: For shorthands, the objective's arguments (`adv_weight`,
            `beta`, `alpha`, `xi`, `power_iterations`,
            `training_mode_attack`, `final_kappa`, ...); otherwise
            `keras.Model` arguments (`name`, ...).

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model = keras_adv.models.AdversarialModel(
    ...     base, keras_adv.attacks.PGD(eps=0.05, steps=3))
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
    ...     from_logits=True), metrics=["accuracy"])
    >>> x = np.random.default_rng(0).uniform(size=(32, 4)).astype("float32")
    >>> y = (x[:, 0] > 0.5).astype("int64")
    >>> history = model.fit(x, y, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['adv_accuracy', 'loss']

    Reference:
        Madry et al., "Towards Deep Learning Models Resistant to Adversarial
        Attacks", ICLR 2018,
        [arXiv:1706.06083](https://arxiv.org/abs/1706.06083).
    """

    _OBJECTIVE_ARGS = (
        "adv_weight",
        "beta",
        "alpha",
        "xi",
        "power_iterations",
        "training_mode_attack",
        "step_factor",
        "noise_multiplier",
        "clip",
        "grad_align_lambda",
        "replays",
        "carry",
        "initial_kappa",
        "final_kappa",
        "initial_beta",
        "final_beta",
        "target_eps",
    )

    def __init__(
        self,
        base_model: keras.Model,
        attack: Attack | None = None,
        objective: Objective | str | Config = "adversarial",
        **kwargs: Any,
    ) -> None:
        objective_kwargs = {
            k: kwargs.pop(k) for k in self._OBJECTIVE_ARGS if k in kwargs
        }
        super().__init__(**kwargs)
        if not isinstance(base_model, keras.Model):
            raise TypeError(
                _validation.invalid("base_model", "a keras.Model", base_model)
            )
        self.objective = objectives.get(objective, attack, **objective_kwargs)
        self.base_model = base_model
        self.adv_loss_tracker = keras.metrics.Mean(name=ADV_LOSS)
        self.adv_accuracy_tracker = keras.metrics.Mean(name=ADV_ACCURACY)
        self.adversarial_step = AdversarialStep(
            self.objective,
            owner="AdversarialModel",
            trackers=(self.adv_loss_tracker, self.adv_accuracy_tracker),
        )
        self.adversarial_step.check_structure(base_model)
        if base_model.built:
            self.built = True

    @property
    def attack(self) -> Attack:
        """The objective's attack."""
        return self.objective.attack

    def call(self, inputs: TensorLike, training: bool | None = None) -> Tensor:
        return self.base_model(inputs, training=training)

    def train_step(self, data: Any) -> dict[str, Any]:
        self.adversarial_step.check_compiled_loss(self, self.base_model)
        return self.adversarial_step.train_step(
            self, super().train_step, data, attack_model=self.base_model
        )

    def compute_loss(
        self,
        x: Tensor | None = None,
        y: Tensor | None = None,
        y_pred: Tensor | None = None,
        sample_weight: Tensor | None = None,
        training: bool = True,
    ) -> Tensor:
        return self.adversarial_step.compute_loss(
            self,
            super().compute_loss,
            x,
            y,
            y_pred,
            sample_weight,
            training,
        )

    def compute_metrics(
        self,
        x: Tensor,
        y: Tensor | None,
        y_pred: Tensor,
        sample_weight: Tensor | None = None,
    ) -> dict[str, Any]:
        return self.adversarial_step.compute_metrics(
            self, super().compute_metrics, x, y, y_pred, sample_weight
        )

    def test_step(self, data: Any) -> dict[str, Any]:
        logs = super().test_step(data)
        # The adversarial trackers measure training batches only.
        return {
            k: v for k, v in logs.items() if k not in (ADV_LOSS, ADV_ACCURACY)
        }

    def save_own_variables(self, store: MutableMapping[str, Any]) -> None:
        # The attack's networks are rebuilt from their configs with fresh
        # weights: save their variables here (models/_attack_state.py).
        super().save_own_variables(store)
        attack_state.save(
            store, attack_state.attack_variables(self.objective, self.weights)
        )

    def load_own_variables(self, store: Mapping[str, Any]) -> None:
        variables = attack_state.attack_variables(self.objective, self.weights)
        store = attack_state.load(store, variables, f"{self.name!r}")
        super().load_own_variables(store)

    def get_config(self) -> Config:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "base_model": keras.saving.serialize_keras_object(self.base_model),
            "objective": keras.saving.serialize_keras_object(self.objective),
        }

    @classmethod
    def from_config(
        cls: type[_ModelT],
        config: Config,
        custom_objects: dict[str, Any] | None = None,
    ) -> _ModelT:
        config = dict(config)
        config["base_model"] = keras.saving.deserialize_keras_object(
            config["base_model"], custom_objects=custom_objects
        )
        config["objective"] = keras.saving.deserialize_keras_object(
            config["objective"], custom_objects=custom_objects
        )
        return cls(**config)
