"""The `AdversarialTraining` callback: robust training inside `model.fit`."""

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _validation
from keras_adv._api import register
from keras_adv.callbacks import _engine

GUARD_MODES = ("restore", "stop")


@register
class AdversarialTraining(keras.callbacks.Callback):
    """Trains any compiled Keras model adversarially inside `model.fit`.

    On train begin the callback wraps `model.train_step` (keeping a
    user-overridden one: it is called with the adversarial batch) and
    rebuilds the train function; on train end it removes the wrapper, so
    nothing is left behind: the model saves, loads and trains as before.
    If a step raises, the wrapper removes itself before the exception
    propagates; a stale wrapper (e.g. another callback raised) is removed
    at the next train begin or by `restore()`.

    Objectives:

    * `"adversarial"`: with `adv_weight=1` train on `x_adv` only (Madry et
      al. 2018); with `0 < adv_weight < 1` on
      `(1 - a) * L(x) + a * L(x_adv)` (Goodfellow et al. 2015 use
      `a=0.5`): the step sees `[x; x_adv]` with sample weights
      `2(1 - a), 2a`, so under the default `"sum_over_batch_size"`
      reduction the clean part keeps its scale. `adv_weight=0` (or eps=0)
      is plain `fit`.
    * `"fgsm-rs"`: FGSM from a uniform random start with step
      `1.25 * eps` (Wong, Rice and Kolter 2020), built from `attack`'s
      eps, norm, value range and loss. Optional guard against catastrophic
      overfitting: pass `guard_data=(x, y)` (one training batch); every
      epoch the callback measures PGD accuracy on it at the epoch's eps
      (`attack` if it is iterative, else PGD-10) and, when it drops by more
      than `guard_drop` below the previous epoch's, stops training
      (`guard="stop"`) and, with `"restore"`, also restores the previous
      epoch's weights.
    * `"trades"`: `CE(f(x), y) + beta * KL(f(x) || f(x_adv))` with `x_adv`
      maximising the KL from `x + 0.001 N(0, 1)` using `attack`'s eps,
      steps, step size and norm (Zhang et al. 2019).
    * `"vat"`: compiled loss on labelled samples +
      `alpha * mean LDS` over all samples, with the virtual adversarial
      direction from `power_iterations` power iterations (Miyato et al.
      2018). Semi-supervised: samples with label `-1` (sparse labels) or an
      all-zero one-hot row are unlabelled: they get no supervised loss and
      are excluded from the metrics but still get the LDS term. (A
      sample weight of 0 also removes a sample from the supervised loss,
      and it still gets the LDS term.)

    The "trades" and "vat" objectives run their own step (compiled loss on
    the clean batch + the robust term, regularisers, loss scaling): a
    user-overridden `train_step` is not called for them.

    eps warm-up and `start_epoch` are `tf.Variable`s read inside the graph:
    changing them does not retrace. eps ramps linearly from
    `eps / eps_warmup_epochs` at `start_epoch` to `eps`. Before
    `start_epoch` steps are clean: the attack runs with eps=0, which returns
    `x` (a `tf.cond` skipping it would slow every adversarial step).

    Logs: `adv_loss` (cross-entropy on `x_adv`) and `adv_accuracy` on the
    training batches, epoch means over all replicas (the per-batch progress
    bar shows running values). For "adversarial" they come from the
    predictions the training step already makes on `x_adv`, so they cost
    nothing (an extra inference forward only with `adv_weight=0` or a
    custom train step that does not call `compute_metrics`).

    Args:
        attack: A `keras_adv.attacks.Attack` (e.g. `PGD(eps=0.3, steps=7)`)
            supplying the threat model (eps, norm, value range) and, for
            "adversarial", the attack itself.
        objective: One of `"adversarial"`, `"fgsm-rs"`, `"trades"`,
            `"vat"`. Defaults to `"adversarial"`.
        adv_weight: Float in `[0, 1]`, weight of the adversarial loss for
            "adversarial" and "fgsm-rs". Defaults to `1.0`.
        start_epoch: Int >= 0, first adversarial epoch. Defaults to `0`.
        eps_warmup_epochs: Int >= 0, epochs of the linear eps ramp.
            Defaults to `0`.
        training_mode_attack: Bool, run the attack's forward passes with
            `training=True` (BatchNorm batch statistics, dropout). Defaults
            to `False`.
        beta: Float >= 0, TRADES weight. Defaults to `6.0`.
        alpha: Float >= 0, VAT weight. Defaults to `1.0`.
        xi: Float > 0, VAT finite-difference scale (raised to `1e-2` under
            `mixed_float16`). Defaults to `1e-6`.
        power_iterations: Int >= 1, VAT power iterations. Defaults to `1`.
        guard_data: Optional `(x, y)` batch for the "fgsm-rs" guard. Not
            part of `get_config`.
        guard: `"restore"` or `"stop"`. Defaults to `"restore"`.
        guard_drop: Float in `(0, 1]`, the accuracy drop that counts as
            catastrophic overfitting. Defaults to `0.2`.

    Raises:
        TypeError: if `attack` is not an Attack.
        ValueError: for an unknown objective or invalid numbers; at train
            begin for a model that is not compiled or has several inputs or
            outputs; at the first step for data without labels (except VAT).

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
    ...     from_logits=True), metrics=["accuracy"])
    >>> x = np.random.default_rng(0).uniform(size=(32, 4)).astype("float32")
    >>> y = (x[:, 0] > 0.5).astype("int64")
    >>> cb = keras_adv.callbacks.AdversarialTraining(
    ...     keras_adv.attacks.PGD(eps=0.05, steps=3))
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    >>> sorted(k for k in history.history if k.startswith("adv_"))
    ['adv_accuracy', 'adv_loss']

    Reference:
        Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning
        Models Resistant to Adversarial Attacks", ICLR 2018,
        arXiv:1706.06083. Goodfellow, Shlens and Szegedy, "Explaining and
        Harnessing Adversarial Examples", ICLR 2015, arXiv:1412.6572. Wong,
        Rice and Kolter, "Fast is better than free", ICLR 2020,
        arXiv:2001.03994. Zhang et al., "Theoretically Principled Trade-off
        between Robustness and Accuracy", ICML 2019, arXiv:1901.08573.
        Miyato, Maeda, Koyama and Ishii, "Virtual Adversarial Training",
        IEEE TPAMI 2018, arXiv:1704.03976.
    """

    def __init__(
        self,
        attack,
        objective="adversarial",
        adv_weight=1.0,
        start_epoch=0,
        eps_warmup_epochs=0,
        training_mode_attack=False,
        beta=6.0,
        alpha=1.0,
        xi=1e-6,
        power_iterations=1,
        guard_data=None,
        guard="restore",
        guard_drop=0.2,
    ):
        super().__init__()
        self._engine = _engine.Engine(
            attack,
            objective=objective,
            adv_weight=adv_weight,
            training_mode_attack=training_mode_attack,
            beta=beta,
            alpha=alpha,
            xi=xi,
            power_iterations=power_iterations,
            owner="AdversarialTraining",
        )
        self.start_epoch = _validation.check_int(
            "start_epoch", start_epoch, minimum=0
        )
        self.eps_warmup_epochs = _validation.check_int(
            "eps_warmup_epochs", eps_warmup_epochs, minimum=0
        )
        self.guard = _validation.check_choice("guard", guard, set(GUARD_MODES))
        self.guard_drop = _validation.check_number(
            "guard_drop", guard_drop, minimum=0.0, strict=True
        )
        if guard_data is not None:
            if not isinstance(guard_data, list | tuple) or len(guard_data) != 2:
                raise ValueError(
                    _validation.invalid(
                        "guard_data", "a pair (x, y) of arrays", guard_data
                    )
                )
            if self._engine.objective != "fgsm-rs":
                raise ValueError(
                    "`guard_data` is only used with objective='fgsm-rs'. "
                    f"Received: objective={self._engine.objective!r}"
                )
        self.guard_data = guard_data
        self._variables = None
        self._trackers = None
        self._wrapped_model = None
        self._guard_best = None
        self._guard_weights = None

    # ---------------------------------------------------------- properties
    @property
    def attack(self):
        return self._engine.attack

    @property
    def objective(self):
        return self._engine.objective

    @property
    def adv_weight(self):
        return self._engine.adv_weight

    @property
    def training_mode_attack(self):
        return self._engine.training_mode_attack

    # ----------------------------------------------------------- schedule
    def eps_scale(self, epoch):
        """The eps multiplier used in `epoch` (0 before `start_epoch`)."""
        relative = epoch - self.start_epoch
        if relative < 0:
            return 0.0
        if self.eps_warmup_epochs == 0:
            return 1.0
        return min(1.0, (relative + 1) / self.eps_warmup_epochs)

    # -------------------------------------------------------------- hooks
    def on_train_begin(self, logs=None):
        model = self.model
        _engine.remove(model)  # A previous fit may have raised.
        self._engine.check_model(model)
        with model.distribute_strategy.scope():
            agg = tf.VariableAggregation.ONLY_FIRST_REPLICA
            self._variables = (
                tf.Variable(
                    1.0, trainable=False, aggregation=agg, name="adv_eps_scale"
                ),
                tf.Variable(
                    1.0, trainable=False, aggregation=agg, name="adv_active"
                ),
            )
            self._trackers = (
                keras.metrics.Mean(name="adv_loss"),
                keras.metrics.Mean(name="adv_accuracy"),
            )
        engine = self._engine
        eps_scale, active = self._variables
        trackers = self._trackers
        base_step = model.train_step

        def adversarial_train_step(data):
            return engine.train_step(
                model,
                base_step,
                data,
                eps_scale=eps_scale.value(),
                active=active.value(),
                trackers=trackers,
            )

        _engine.install(model, adversarial_train_step)
        self._wrapped_model = model
        self._guard_best = None
        self._guard_weights = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._variables is None:
            return
        scale = self.eps_scale(epoch)
        self._variables[0].assign(max(scale, 0.0))
        self._variables[1].assign(1.0 if epoch >= self.start_epoch else 0.0)
        for tracker in self._trackers:
            tracker.reset_state()

    def on_epoch_end(self, epoch, logs=None):
        if self._trackers is None or logs is None:
            return
        count = getattr(self._trackers[0], "count", None)
        if count is not None and float(count.numpy()) == 0.0:
            # No labelled adversarial batch this epoch (e.g. VAT without y).
            logs.pop("adv_loss", None)
            logs.pop("adv_accuracy", None)
        else:
            logs["adv_loss"] = float(self._trackers[0].result())
            logs["adv_accuracy"] = float(self._trackers[1].result())
        if self.guard_data is not None and epoch >= self.start_epoch:
            self._run_guard(epoch, logs)

    def on_train_end(self, logs=None):
        self.restore()

    def restore(self):
        """Removes the train-step wrapper from the model (idempotent)."""
        model = self._wrapped_model
        if model is not None:
            _engine.remove(model)
        self._wrapped_model = None

    # -------------------------------------------------------------- guard
    def _guard_attack(self):
        from keras_adv.attacks import PGD
        from keras_adv.attacks.pgd import IterativeAttack

        attack = self.attack
        if isinstance(attack, IterativeAttack) and attack.steps > 1:
            return attack
        return PGD(
            eps=attack.eps,
            steps=10,
            norm=attack.norm,
            value_range=attack.value_range,
            seed=attack.seed,
        )

    def _run_guard(self, epoch, logs):
        x, y = self.guard_data
        x = np.asarray(x, "float32")
        y = np.asarray(y)
        attack = self._guard_attack()
        eps = float(np.asarray(attack.eps)) * self.eps_scale(epoch)
        x_adv = attack(self.model, x, y, eps=eps)
        pred = np.argmax(np.asarray(self.model(x_adv, training=False)), -1)
        labels = (
            y.reshape(-1)
            if y.ndim == 1 or y.shape[-1] == 1
            else (np.argmax(y, -1))
        )
        accuracy = float(np.mean(pred == labels))
        logs["guard_robust_accuracy"] = accuracy
        # `_guard_best` holds the previous epoch's accuracy (Wong et al.
        # compare consecutive epochs), `_guard_weights` its weights.
        previous = self._guard_best
        if previous is not None and accuracy < previous - self.guard_drop:
            if self.guard == "restore" and self._guard_weights is not None:
                self.model.set_weights(self._guard_weights)
            self.model.stop_training = True
            return
        self._guard_best = accuracy
        if self.guard == "restore":
            self._guard_weights = self.model.get_weights()

    # ------------------------------------------------------ serialisation
    def get_config(self):
        """The constructor arguments (without `guard_data`)."""
        engine = self._engine
        return {
            "attack": keras.saving.serialize_keras_object(engine.attack),
            "objective": engine.objective,
            "adv_weight": engine.adv_weight,
            "start_epoch": self.start_epoch,
            "eps_warmup_epochs": self.eps_warmup_epochs,
            "training_mode_attack": engine.training_mode_attack,
            "beta": engine.beta,
            "alpha": engine.alpha,
            "xi": engine.xi,
            "power_iterations": engine.power_iterations,
            "guard": self.guard,
            "guard_drop": self.guard_drop,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["attack"] = keras.saving.deserialize_keras_object(
            config["attack"]
        )
        return cls(**config)
