"""`AdversarialModel`: adversarial training as a model wrapper."""

import keras

from keras_adv._api import register
from keras_adv.callbacks import _engine


@register
class AdversarialModel(keras.Model):
    """Wraps a classifier so that `compile`/`fit` train it adversarially.

    The same engine as `keras_adv.callbacks.AdversarialTraining`, for users
    who prefer a model to a callback. `call` is `base_model`'s forward pass;
    `train_step` builds adversarial examples against `base_model` and trains
    with the chosen objective; `evaluate`/`predict` are clean. After
    training, deploy `base_model` (the plain model, with the trained
    weights). The wrapper saves and loads as `.keras` (the attack is part of
    its config).

    The metrics `adv_loss` (cross-entropy on `x_adv`) and `adv_accuracy`
    are tracked and reset every epoch with the compiled metrics. There is
    no eps schedule here: for a warm-up give the attack a `keras.Variable`
    eps and change it from a callback (no retracing), or use the callback.

    Args:
        base_model: A Keras classifier with one input and one output of
            shape `(batch, classes)` (logits or probabilities).
        attack: A `keras_adv.attacks.Attack`.
        objective: `"adversarial"`, `"fgsm-rs"`, `"trades"` or `"vat"` (see
            `AdversarialTraining`). Defaults to `"adversarial"`.
        adv_weight: Float in `[0, 1]`. Defaults to `1.0`.
        training_mode_attack: Bool. Defaults to `False`.
        beta: Float, TRADES weight. Defaults to `6.0`.
        alpha: Float, VAT weight. Defaults to `1.0`.
        xi: Float, VAT finite-difference scale. Defaults to `1e-6`.
        power_iterations: Int, VAT power iterations. Defaults to `1`.
        **kwargs: `keras.Model` arguments (`name`, ...).

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
    ['accuracy', 'adv_accuracy', 'adv_loss', 'loss']

    Reference:
        Madry et al., "Towards Deep Learning Models Resistant to Adversarial
        Attacks", ICLR 2018, arXiv:1706.06083.
    """

    def __init__(
        self,
        base_model,
        attack,
        objective="adversarial",
        adv_weight=1.0,
        training_mode_attack=False,
        beta=6.0,
        alpha=1.0,
        xi=1e-6,
        power_iterations=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(base_model, keras.Model):
            raise TypeError(
                "Invalid value received for argument `base_model`. Expected "
                f"a keras.Model. Received: base_model={base_model!r}"
            )
        self._engine = _engine.Engine(
            attack,
            objective=objective,
            adv_weight=adv_weight,
            training_mode_attack=training_mode_attack,
            beta=beta,
            alpha=alpha,
            xi=xi,
            power_iterations=power_iterations,
            owner="AdversarialModel",
        )
        self._engine.check_structure(base_model)
        self.base_model = base_model
        self.adv_loss_tracker = keras.metrics.Mean(name="adv_loss")
        self.adv_accuracy_tracker = keras.metrics.Mean(name="adv_accuracy")
        if base_model.built:
            self.built = True

    @property
    def attack(self):
        return self._engine.attack

    @property
    def objective(self):
        return self._engine.objective

    def call(self, inputs, training=None):
        return self.base_model(inputs, training=training)

    def train_step(self, data):
        base_step = super().train_step
        return self._engine.train_step(
            self,
            base_step,
            data,
            attack_model=self.base_model,
            trackers=(self.adv_loss_tracker, self.adv_accuracy_tracker),
        )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        _engine.capture(y_pred)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def test_step(self, data):
        logs = super().test_step(data)
        # The adv trackers measure training batches only.
        return {
            k: v
            for k, v in logs.items()
            if k not in ("adv_loss", "adv_accuracy")
        }

    def get_config(self):
        engine = self._engine
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "base_model": keras.saving.serialize_keras_object(self.base_model),
            "attack": keras.saving.serialize_keras_object(engine.attack),
            "objective": engine.objective,
            "adv_weight": engine.adv_weight,
            "training_mode_attack": engine.training_mode_attack,
            "beta": engine.beta,
            "alpha": engine.alpha,
            "xi": engine.xi,
            "power_iterations": engine.power_iterations,
        }
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["base_model"] = keras.saving.deserialize_keras_object(
            config["base_model"], custom_objects=custom_objects
        )
        config["attack"] = keras.saving.deserialize_keras_object(
            config["attack"], custom_objects=custom_objects
        )
        return cls(**config)
