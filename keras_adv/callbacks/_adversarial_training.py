"""The `AdversarialTraining` callback: robust training inside `model.fit`."""

import warnings
from typing import Any
from typing import TypeVar

import keras
import tensorflow as tf

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv.attacks import Attack
from keras_adv.callbacks import _install
from keras_adv.training import Objective
from keras_adv.training import _registry as objectives
from keras_adv.training._step import ADV_ACCURACY
from keras_adv.training._step import ADV_LOSS
from keras_adv.training._step import AdversarialStep

_CallbackT = TypeVar("_CallbackT", bound="AdversarialTraining")


@register
class AdversarialTraining(keras.callbacks.Callback):
    """Trains any compiled Keras model adversarially inside `model.fit`.

    From the first adversarial epoch on, the callback installs on the model
    the same step as `keras_adv.models.AdversarialModel` (`x_adv` built
    before the tape, Keras' or the user's own `train_step` on the
    objective's batch, the objective's term in `compute_loss`, adversarial
    metrics in `compute_metrics`); at the end of `fit` it removes it, so
    nothing is left behind: the model saves, loads and trains as before.
    If a step raises, the installation removes itself before the exception
    propagates; if `fit` ends with an exception elsewhere (a callback,
    KeyboardInterrupt), the next `fit` removes it before it starts.

    Objectives (see `keras_adv.training`): an `Objective` instance, or a
    shorthand with its arguments as keyword arguments:
    `"adversarial"` (`Madry`: `adv_weight`), `"fgsm_rs"` (`FGSMRS`:
    `adv_weight`, `step_factor`), `"trades"` (`TRADES`: `beta`), `"vat"`
    (`VAT`: `alpha`, `xi`, `power_iterations`); all take
    `training_mode_attack`. TRADES and VAT add their term in
    `compute_loss`: a user-overridden `train_step` must call
    `self.compute_loss` (Keras' own does).

    Before `start_epoch` no attack runs at all: the model trains with its
    own step and the epoch logs have no `adv_*` keys. The eps warm-up is a
    variable read inside the graph: eps ramps linearly from
    `eps / eps_warmup_epochs` at `start_epoch` to `eps`, without
    retracing; or, with `eps_warmup_steps`, per optimizer step (the ramp
    of the verified-training papers, Gowal et al. 2018 and Zhang et al.
    2020): `eps * min(1, (k + 1) / eps_warmup_steps)` at the `k`-th
    update since `start_epoch`, computed in the graph from the
    optimizer's step counter. A warm-up that `fit(epochs=...)` does not
    finish (eps never reached, or reached in the last epoch only) warns at
    train begin.
    Catastrophic overfitting (FGSM-RS) is watched by the separate
    `OverfittingGuard` callback.

    Logs, each quantity once (epoch means over all replicas): `loss` is
    the loss being minimised; `adv_accuracy` is the accuracy on the
    training batches' `x_adv`. When the model trains on `x_adv` alone
    (`"adversarial"`, `"fgsm_rs"` with `adv_weight=1`, ...), Keras'
    compiled metrics measured `x_adv` and are logged with an `adv_` prefix
    (`adv_accuracy`), and `loss` is the adversarial loss (`adv_loss`, the
    cross-entropy on `x_adv`, is added only if the objective adds a term
    to it). Otherwise (TRADES, VAT, `adv_weight < 1`) they keep their
    names (measured on the batch trained on: clean, or clean and
    adversarial) and `adv_loss` is added. Validation keys (`val_*`) are
    clean, as in Keras. The adversarial metrics reuse the predictions the
    step already makes on `x_adv` (no extra forward pass).

    Args:
        attack: A `keras_adv.attacks.Attack` (e.g. `PGD(eps=0.3, steps=7)`)
            supplying the threat model and, for "adversarial", the attack;
            None when `objective` is an `Objective` instance.
        objective: An `Objective` or a shorthand string. Defaults to
            `"adversarial"`.
        start_epoch: Int >= 0, first adversarial epoch. Defaults to `0`.
        eps_warmup_epochs: Int >= 0, epochs of the linear eps ramp.
            Defaults to `0`.
        eps_warmup_steps: Int >= 0, optimizer steps of a linear eps ramp
            per step instead (not with `eps_warmup_epochs`). Defaults to
            `0`.
        **objective_kwargs: Arguments of the shorthand's objective.

    Raises:
        TypeError: if `attack` is not an Attack, or an argument does not
            belong to the objective.
        ValueError: for an unknown objective, a targeted attack or invalid
            numbers; at train begin for a model that is not compiled, has
            several inputs or outputs, or already has another
            `AdversarialTraining` callback in the same `fit`.

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
    >>> sorted(history.history)  # accuracy on x_adv: adv_accuracy
    ['adv_accuracy', 'loss']

    Reference:
        Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning
        Models Resistant to Adversarial Attacks", ICLR 2018,
        [arXiv:1706.06083](https://arxiv.org/abs/1706.06083).
    """

    def __init__(
        self,
        attack: Attack | None = None,
        objective: Objective | str = "adversarial",
        start_epoch: int = 0,
        eps_warmup_epochs: int = 0,
        eps_warmup_steps: int = 0,
        **objective_kwargs: Any,
    ) -> None:
        super().__init__()
        for legacy in ("guard_data", "guard", "guard_drop"):
            if legacy in objective_kwargs:
                raise TypeError(
                    f"`{legacy}` is no longer an AdversarialTraining "
                    "argument: add a keras_adv.callbacks.OverfittingGuard "
                    "callback after AdversarialTraining instead."
                )
        self.objective = objectives.get(objective, attack, **objective_kwargs)
        self.start_epoch = _validation.check_int(
            "start_epoch", start_epoch, minimum=0
        )
        self.eps_warmup_epochs = _validation.check_int(
            "eps_warmup_epochs", eps_warmup_epochs, minimum=0
        )
        self.eps_warmup_steps = _validation.check_int(
            "eps_warmup_steps", eps_warmup_steps, minimum=0
        )
        if self.eps_warmup_steps and self.eps_warmup_epochs:
            raise ValueError(
                _validation.invalid(
                    "eps_warmup_steps",
                    "0 when eps_warmup_epochs is given (one ramp)",
                    eps_warmup_steps,
                )
            )
        # Set by on_train_begin.
        self._eps_scale: tf.Variable | None = None
        self._ramp_start: tf.Variable | None = None
        self._trackers: tuple[keras.metrics.Mean, keras.metrics.Mean] | None = (
            None
        )
        self._installation: _install.Installation | None = None

    @property
    def attack(self) -> Attack:
        """The objective's attack."""
        return self.objective.attack

    # ----------------------------------------------------------- schedule
    def eps_scale(self, epoch: int) -> float:
        """The eps multiplier used in `epoch` (0 before `start_epoch`)."""
        relative = epoch - self.start_epoch
        if relative < 0:
            return 0.0
        if self.eps_warmup_epochs == 0:
            return 1.0
        return min(1.0, (relative + 1) / self.eps_warmup_epochs)

    def _check_schedule(self, epochs: int) -> None:
        """Warns when `fit(epochs=...)` makes the schedule meaningless."""
        start, warmup = self.start_epoch, self.eps_warmup_epochs
        if start >= epochs:
            warnings.warn(
                f"AdversarialTraining(start_epoch={start}) with "
                f"fit(epochs={epochs}): no epoch is adversarial, training "
                "is entirely clean.",
                stacklevel=2,
            )
            return
        if not warmup or start + warmup < epochs:
            return
        scale = self.eps_scale(epochs - 1)
        try:
            eps = f"eps {float(self.attack.eps):g}"  # type: ignore[arg-type]
        except (TypeError, ValueError):
            eps = "the attack's eps"
        if scale < 1.0:
            reached = (
                f"{eps} is never reached: the last epoch trains at "
                f"{scale:.0%} of it"
            )
        else:
            reached = f"{eps} is reached in the last epoch only"
        warnings.warn(
            f"AdversarialTraining(eps_warmup_epochs={warmup}"
            + (f", start_epoch={start}" if start else "")
            + f") with fit(epochs={epochs}): {reached}, so the model "
            f"will not be robust at {eps}. Train for more epochs after "
            "the warm-up (the recipes warm up over the first third of the "
            "epochs) or shorten `eps_warmup_epochs`.",
            stacklevel=2,
        )

    def _check_step_ramp(self, epochs: int, steps: int | None) -> None:
        """Warns when the per-step ramp does not end before `fit` does."""
        if not self.eps_warmup_steps or not steps:
            return
        total = steps * max(epochs - self.start_epoch, 0)
        if total and self.eps_warmup_steps >= total:
            warnings.warn(
                f"AdversarialTraining(eps_warmup_steps="
                f"{self.eps_warmup_steps}) with {total} adversarial steps "
                f"in fit ({epochs} epochs of {steps} steps"
                + (
                    f" from epoch {self.start_epoch}"
                    if self.start_epoch
                    else ""
                )
                + "): the full eps is never reached before training ends. "
                "Shorten `eps_warmup_steps` or train for more epochs.",
                stacklevel=2,
            )

    # -------------------------------------------------------------- hooks
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        model = self.model
        if not getattr(model, "compiled", False) or model.optimizer is None:
            raise ValueError(
                "AdversarialTraining needs a compiled model: call "
                "`model.compile(optimizer=..., loss=...)` before `fit`. "
                f"Received: model {model.name!r} that is not compiled."
            )
        epochs = (self.params or {}).get("epochs")
        if epochs is not None:
            self._check_schedule(epochs)
            self._check_step_ramp(epochs, (self.params or {}).get("steps"))
        with model.distribute_strategy.scope():
            self._eps_scale = tf.Variable(
                1.0,
                trainable=False,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                name="adv_eps_scale",
            )
            if self.eps_warmup_steps:
                self._ramp_start = tf.Variable(
                    0,
                    dtype="int64",
                    trainable=False,
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                    name="adv_eps_ramp_start",
                )
            self._trackers = (
                keras.metrics.Mean(name=ADV_LOSS),
                keras.metrics.Mean(name=ADV_ACCURACY),
            )
        step = AdversarialStep(
            self.objective,
            owner=f"AdversarialTraining@{id(self):x}",
            trackers=self._trackers,
            eps_scale=self._eps_scale,
            eps_ramp=None
            if self._ramp_start is None
            else (self._ramp_start, self.eps_warmup_steps),
        )
        step.check_structure(model)
        step.check_compiled_loss(model)
        self._installation = _install.Installation(model, step, step.owner)

    def on_epoch_begin(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if self._installation is None:
            return
        # Set with the installation (on_train_begin).
        self._eps_scale.assign(self.eps_scale(epoch))  # type: ignore[union-attr]
        if self._ramp_start is not None and epoch == self.start_epoch:
            self._ramp_start.assign(
                int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            )
        for tracker in self._trackers:  # type: ignore[union-attr]
            tracker.reset_state()
        if epoch >= self.start_epoch and not self.active:
            other = _install.installation(self.model)
            if other is not None:
                raise ValueError(
                    "Two AdversarialTraining callbacks in one `fit`: the "
                    f"model {self.model.name!r} is already trained by "
                    "another one. Use one callback (one Objective)."
                )
            self._installation.install()

    def on_epoch_end(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if logs is None or not self.active:
            return
        keys = (ADV_LOSS, ADV_ACCURACY)
        # The trackers are set with the (active) installation.
        if float(self._trackers[0].count.numpy()) == 0.0:  # type: ignore[index]
            # No labelled adversarial batch this epoch (VAT without y).
            for key in keys:
                logs.pop(key, None)
            return
        # The exact epoch means, for the keys the step logged (no
        # `adv_loss` when Keras' `loss` is already the adversarial one).
        for key, tracker in zip(keys, self._trackers):  # type: ignore[arg-type]
            if key in logs:
                logs[key] = float(tracker.result())

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.restore()

    @property
    def active(self) -> bool:
        """True while the adversarial step is installed on the model."""
        return (
            self._installation is not None
            and _install.installation(self._installation.model)
            is self._installation
        )

    def restore(self) -> None:
        """Removes the adversarial step from the model (idempotent)."""
        if self._installation is not None:
            self._installation.remove()
        self._installation = None

    # ------------------------------------------------------ serialisation
    def get_config(self) -> Config:
        return {
            "objective": keras.saving.serialize_keras_object(self.objective),
            "start_epoch": self.start_epoch,
            "eps_warmup_epochs": self.eps_warmup_epochs,
            "eps_warmup_steps": self.eps_warmup_steps,
        }

    @classmethod
    def from_config(cls: type[_CallbackT], config: Config) -> _CallbackT:
        config = dict(config)
        config["objective"] = keras.saving.deserialize_keras_object(
            config["objective"]
        )
        return cls(**config)
