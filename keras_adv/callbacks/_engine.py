"""The adversarial-training engine shared by the callback and the model.

`Engine.train_step(model, base_step, data, ...)` is one training step, meant
to be traced inside Keras' train function:

* "adversarial" / "fgsm-rs": build `x_adv` with the attack, then call
  `base_step` (the model's own, possibly user-overridden, `train_step`) on
  `x_adv` (adv_weight=1), on `[x; x_adv]` with weights `2(1-a), 2a`
  (0 < a < 1), or on `x` (a=0). Keras keeps loss, metrics, loss scaling,
  regularisers and distribution.
* "trades" / "vat": an own step (their objective is not a loss on a
  substituted batch) written like Keras' `train_step`: compiled loss on the
  clean batch plus the KL / LDS term, loss scaling, one gradient.

This module is the TensorFlow seam of adversarial training: `tf.cond`,
`tf.GradientTape`, replica ids and the train-step installation live here.
"""

import copy
import threading

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv.attacks.base import Attack
from keras_adv.attacks.base import ModelLogits
from keras_adv.losses import margin
from keras_adv.losses import robust

OBJECTIVES = ("adversarial", "fgsm-rs", "trades", "vat")
_WRAPPER_FLAG = "_keras_adv_adversarial_step"
_TRADES_DEFAULT_STEPS = 10


def _unpack(data):
    return keras.utils.unpack_x_y_sample_weight(data)


def _pack(x, y, sample_weight):
    return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)


def _safe_getattr(model, name):
    try:
        return getattr(model, name, None)
    except Exception:  # Keras raises for some unbuilt subclassed models.
        return None


def _is_nested(value):
    return isinstance(value, list | tuple | dict)


class Engine:
    """Validated configuration plus the traced step (internal).

    Args: see `AdversarialTraining`.
    """

    def __init__(
        self,
        attack,
        objective="adversarial",
        adv_weight=1.0,
        training_mode_attack=False,
        beta=6.0,
        alpha=1.0,
        xi=1e-6,
        power_iterations=1,
        owner="AdversarialTraining",
    ):
        if not isinstance(attack, Attack):
            raise TypeError(
                _validation.invalid(
                    "attack",
                    "a keras_adv.attacks.Attack instance (e.g. "
                    "keras_adv.attacks.PGD(eps=0.3))",
                    attack,
                )
            )
        self.objective = _validation.check_choice(
            "objective", objective, set(OBJECTIVES)
        )
        adv_weight = _validation.check_number(
            "adv_weight", adv_weight, minimum=0.0
        )
        if adv_weight > 1.0:
            raise ValueError(
                _validation.invalid(
                    "adv_weight", "a number in [0, 1]", adv_weight
                )
            )
        if not isinstance(training_mode_attack, bool):
            raise TypeError(
                _validation.invalid(
                    "training_mode_attack", "a bool", training_mode_attack
                )
            )
        self.adv_weight = adv_weight
        self.training_mode_attack = training_mode_attack
        self.beta = _validation.check_number("beta", beta, minimum=0.0)
        self.alpha = _validation.check_number("alpha", alpha, minimum=0.0)
        self.xi = _validation.check_number("xi", xi, minimum=0.0, strict=True)
        self.power_iterations = _validation.check_int(
            "power_iterations", power_iterations, minimum=1
        )
        self.owner = owner
        self.attack = attack
        self.train_attack = self._make_train_attack(attack)

    # ------------------------------------------------------------ attacks
    def _make_train_attack(self, attack):
        """The attack used in the step, with the requested training flag."""
        if self.objective == "fgsm-rs":
            from keras_adv.attacks import FGSM

            train_attack = FGSM(
                eps=1.0,
                norm=attack.norm,
                value_range=attack.value_range,
                loss=attack.loss,
                random_start=True,
                from_logits=attack.from_logits,
                training=self.training_mode_attack,
                seed=attack.seed,
            )
            # Share the threat model: an eps variable stays live.
            train_attack.threat_model = attack.threat_model
            return train_attack
        train_attack = copy.copy(attack)
        train_attack.training = self.training_mode_attack
        return train_attack

    def _steps_and_step_size(self, x, eps):
        attack = self.train_attack
        steps = getattr(attack, "steps", _TRADES_DEFAULT_STEPS)
        eps_b = attack.threat_model.eps_tensor(x, eps)
        if getattr(attack, "step_size", None) is not None:
            return steps, ops.cast(attack.step_size, "float32") + 0.0 * eps_b
        factor = (
            attack._step_factor()
            if hasattr(attack, "_step_factor")
            else 2.5 / steps
        )
        return steps, factor * eps_b

    # ------------------------------------------------------------- checks
    def check_model(self, model):
        """Eager checks before training starts."""
        if not isinstance(model, keras.Model):
            raise TypeError(
                _validation.invalid("model", "a keras.Model", model)
            )
        if not getattr(model, "compiled", False) or model.optimizer is None:
            raise ValueError(
                f"{self.owner} needs a compiled model: call "
                "`model.compile(optimizer=..., loss=...)` before `fit`. "
                f"Received: model {model.name!r} that is not compiled."
            )
        self.check_structure(model)

    def check_structure(self, model):
        """Single input, single output (where the model declares them)."""
        outputs = _safe_getattr(model, "outputs")
        if outputs is not None and len(outputs) > 1:
            raise ValueError(
                f"{self.owner} supports models with a single output of "
                "shape (batch, classes). Received: model "
                f"{model.name!r} with {len(outputs)} outputs."
            )
        inputs = _safe_getattr(model, "inputs")
        if inputs is not None and len(inputs) > 1:
            raise ValueError(
                f"{self.owner} supports models with a single input tensor. "
                f"Received: model {model.name!r} with {len(inputs)} inputs."
            )

    def _check_batch(self, x, y):
        if _is_nested(x):
            raise ValueError(
                f"{self.owner} supports models with a single input tensor. "
                f"Received: x of type {type(x).__name__}."
            )
        if y is None and self.objective != "vat":
            raise ValueError(
                f"The {self.objective!r} objective needs labels: fit on "
                "(x, y) pairs. Received: data without y."
            )
        if _is_nested(y):
            raise ValueError(
                f"{self.owner} supports models with a single output; "
                f"received nested labels y of type {type(y).__name__}."
            )

    @staticmethod
    def _check_prediction(y_pred, owner):
        if _is_nested(y_pred):
            raise ValueError(
                f"{owner} supports models with a single output of shape "
                "(batch, classes). Received: a model output of type "
                f"{type(y_pred).__name__}."
            )

    # -------------------------------------------------------------- utils
    def outputs_to_logits(self, attack_model, outputs):
        """Model outputs (logits or probabilities) as float32 logits."""
        mode = self.train_attack._resolve_from_logits(attack_model)
        return ModelLogits(attack_model, mode).head(outputs)

    def _seed(self, model):
        """A stateless (2,) seed: attack seed, replica id, step counter."""
        base = self.attack.seed or 0
        ctx = tf.distribute.get_replica_context()
        replica = ctx.replica_id_in_sync_group if ctx is not None else 0
        replica = tf.cast(replica, tf.int32)
        step = tf.cast(model.optimizer.iterations, tf.int32)
        return tf.stack([base + 1000003 * replica, step])

    def _update_adv_stats(self, attack_model, trackers, y, y_pred, weight):
        if trackers is None:
            return
        loss_tracker, acc_tracker = trackers
        logits = self.outputs_to_logits(attack_model, y_pred)
        labels = self.train_attack._sparse_labels(y)
        labels = ops.maximum(labels, 0)
        ce = margin.cross_entropy(labels, logits)
        correct = ops.cast(
            ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), labels),
            "float32",
        )
        if weight is not None:
            weight = ops.cast(ops.reshape(weight, [-1]), "float32")
        loss_tracker.update_state(ce, sample_weight=weight)
        acc_tracker.update_state(correct, sample_weight=weight)

    @staticmethod
    def _with_stats(logs, trackers):
        if trackers is None:
            return logs
        logs = dict(logs)
        logs["adv_loss"] = trackers[0].result()
        logs["adv_accuracy"] = trackers[1].result()
        return logs

    # --------------------------------------------------------------- step
    def train_step(
        self,
        model,
        base_step,
        data,
        attack_model=None,
        eps_scale=None,
        active=None,
        trackers=None,
    ):
        """One adversarial training step (graph-safe).

        Args:
            model: The model being trained (owns optimizer and metrics).
            base_step: Callable `data -> logs`, the model's own train step.
            data: The batch as given to `train_step`.
            attack_model: The model the attack differentiates (defaults to
                `model`; `AdversarialModel` passes its `base_model`).
            eps_scale: Optional float32 scalar tensor multiplying eps
                (warm-up).
            active: Optional float32 scalar tensor, 1 when adversarial
                training is on (start_epoch), 0 for clean steps.
            trackers: Optional `(adv_loss, adv_accuracy)` Mean metrics.

        Returns:
            The logs dict of the step.
        """
        attack_model = model if attack_model is None else attack_model
        x, y, sample_weight = _unpack(data)
        self._check_batch(x, y)
        eps = ops.cast(self.train_attack.eps, "float32")
        if eps_scale is not None:
            eps = eps * eps_scale
        if active is None:
            active = ops.convert_to_tensor(1.0, "float32")
        else:
            eps = eps * active
        if self.objective in ("adversarial", "fgsm-rs"):
            return self._substitution_step(
                model,
                attack_model,
                base_step,
                x,
                y,
                sample_weight,
                eps,
                active,
                trackers,
            )
        return self._regularised_step(
            model, attack_model, x, y, sample_weight, eps, active, trackers
        )

    def _substitution_step(
        self,
        model,
        attack_model,
        base_step,
        x,
        y,
        sample_weight,
        eps,
        active,
        trackers,
    ):
        seed = self._seed(model)
        attack = self.train_attack

        def attacked():
            return attack.perturb(attack_model, x, y, eps=eps, seed=seed)

        # No tf.cond around the attack: a conditional branch costs ~60% more
        # on CPU than the same attack inline (measured); before start_epoch
        # the attack runs with eps=0 and returns x exactly.
        x_adv = attacked()
        a = self.adv_weight
        if a == 1.0:
            logs, y_pred = _call_capturing(
                model, base_step, (x_adv, y, sample_weight)
            )
            adv_pred = y_pred
        elif a == 0.0:
            logs, _ = _call_capturing(model, base_step, (x, y, sample_weight))
            adv_pred = None
        else:
            batch = ops.shape(x)[0]
            a_eff = a * active
            if sample_weight is None:
                sw = ops.ones((batch,), "float32")
            else:
                sw = ops.cast(sample_weight, "float32")
            weights = ops.concatenate(
                [2.0 * (1.0 - a_eff) * sw, 2.0 * a_eff * sw], axis=0
            )
            x_cat = ops.concatenate([x, x_adv], axis=0)
            y_cat = ops.concatenate([y, y], axis=0)
            logs, y_pred = _call_capturing(
                model, base_step, (x_cat, y_cat, weights)
            )
            adv_pred = None if y_pred is None else y_pred[batch:]
        if trackers is not None:
            if adv_pred is None:
                adv_pred = model(x_adv, training=False)
            self._check_prediction(adv_pred, self.owner)
            self._update_adv_stats(
                attack_model, trackers, y, adv_pred, sample_weight
            )
        return self._with_stats(logs, trackers)

    def _regularised_step(
        self, model, attack_model, x, y, sample_weight, eps, active, trackers
    ):
        from keras.src.losses import loss as loss_module

        seed = self._seed(model)
        attack = self.train_attack
        logits_fn = attack._logits_fn(attack_model)
        batch = ops.shape(x)[0]
        x32 = ops.cast(x, "float32")
        if self.objective == "vat":
            y, sample_weight, weight = _labelled_mask(y, sample_weight, batch)
        else:
            weight = sample_weight

        def perturb():
            clean_logits = logits_fn(x32)
            if self.objective == "trades":
                steps, step_size = self._steps_and_step_size(x32, eps)
                x_adv = robust.trades_perturbation(
                    logits_fn,
                    x32,
                    clean_logits,
                    attack.threat_model,
                    eps,
                    steps,
                    step_size,
                    seed,
                )
            else:
                xi = self.xi
                if model.dtype_policy.compute_dtype == "float16":
                    xi = max(xi, 1e-2)
                x_adv = robust.virtual_adversarial_perturbation(
                    logits_fn,
                    x32,
                    clean_logits,
                    attack.threat_model,
                    eps,
                    xi=xi,
                    power_iterations=self.power_iterations,
                    seed=seed,
                )
            return ops.cast(x_adv, x.dtype)

        x_adv = perturb()
        with tf.GradientTape() as tape:
            y_pred = _forward(model, x)
            self._check_prediction(y_pred, self.owner)
            y_pred_adv = _forward(model, x_adv)
            if y is None:
                loss = ops.zeros((), "float32")
                for extra in model.losses:
                    loss = loss + ops.cast(
                        model._aggregate_additional_loss(extra), "float32"
                    )
            else:
                loss = model._compute_loss(
                    x=x,
                    y=y,
                    y_pred=y_pred,
                    sample_weight=sample_weight,
                    training=True,
                )
            clean_logits = self.outputs_to_logits(attack_model, y_pred)
            adv_logits = self.outputs_to_logits(attack_model, y_pred_adv)
            if self.objective == "trades":
                term = robust.trades_kl(clean_logits, adv_logits)
                coefficient = self.beta
                term_weight = sample_weight
            else:
                term = robust.vat_lds(clean_logits, adv_logits)
                coefficient = self.alpha
                term_weight = None
            if term_weight is not None:
                term = term * ops.cast(
                    ops.reshape(term_weight, [-1]), "float32"
                )
            term = ops.sum(term) / ops.cast(batch, "float32")
            term = coefficient * active * term
            term = loss_module.scale_loss_for_distribution(term)
            total = loss + ops.cast(term, loss.dtype)
            model._loss_tracker.update_state(
                loss_module.unscale_loss_for_distribution(total),
                sample_weight=batch,
            )
            scaled = model.optimizer.scale_loss(total)
        weights = model.trainable_weights
        gradients = tape.gradient(scaled, weights)
        model.optimizer.apply_gradients(zip(gradients, weights))
        if y is None:
            # Without labels only the loss is measured (compile the model
            # without metrics: Keras cannot build them without `y`).
            logs = {"loss": model._loss_tracker.result()}
        else:
            logs = model.compute_metrics(
                x, y, y_pred, sample_weight=sample_weight
            )
        if trackers is not None and y is not None:
            self._update_adv_stats(
                attack_model, trackers, y, y_pred_adv, weight
            )
        return self._with_stats(logs, trackers)


def _forward(model, x):
    if getattr(model, "_call_has_training_arg", True):
        return model(x, training=True)
    return model(x)


def _labelled_mask(y, sample_weight, batch):
    """VAT: labels of -1 (or all-zero one-hot rows) mark unlabelled samples.

    Returns `(y with -1 replaced by 0, sample_weight * labelled, weight)`
    where `weight` is the per-sample labelled weight for the adv metrics.
    """
    if y is None:
        return None, sample_weight, None
    if len(y.shape) == 2 and y.shape[-1] not in (None, 1):
        labelled = ops.sum(ops.cast(y, "float32"), axis=-1) > 0
        y_safe = y
    else:
        labelled = ops.reshape(ops.cast(y, "int32"), [-1]) >= 0
        y_safe = ops.where(y >= 0, y, ops.zeros_like(y))
    mask = ops.cast(labelled, "float32")
    if sample_weight is None:
        weight = mask
    else:
        weight = ops.cast(ops.reshape(sample_weight, [-1]), "float32") * mask
    return y_safe, weight, weight


class _CaptureSlot(threading.local):
    """Per-thread slot (MirroredStrategy traces replicas in threads)."""

    slot = None


_CAPTURE = _CaptureSlot()


def capture(y_pred):
    """Records `y_pred` for the enclosing `_call_capturing` (trace time)."""
    slot = _CAPTURE.slot
    if slot is not None and "y_pred" not in slot:
        slot["y_pred"] = y_pred


def capturing_compute_metrics(original):
    """Wraps a bound `compute_metrics` so that it reports its `y_pred`."""

    def compute_metrics(x, y, y_pred, sample_weight=None):
        capture(y_pred)
        return original(x, y, y_pred, sample_weight=sample_weight)

    setattr(compute_metrics, _WRAPPER_FLAG, True)
    return compute_metrics


def _call_capturing(model, base_step, data):
    """Calls `base_step(data)` and captures the `y_pred` it reports.

    The model's `compute_metrics` reports its predictions through `capture`
    (installed with the wrapper, or built into `AdversarialModel`), so the
    predictions on `x_adv` that the model's own step computes are reused for
    the adv metrics at no extra cost. Python-level, at trace time only.
    Returns `(logs, y_pred or None)`.
    """
    x, y, sample_weight = data
    previous = _CAPTURE.slot
    slot = {}
    _CAPTURE.slot = slot
    try:
        logs = base_step(_pack(x, y, sample_weight))
    finally:
        _CAPTURE.slot = previous
    return logs, slot.get("y_pred")


# ------------------------------------------------------ installation
def is_wrapped(model):
    step = model.__dict__.get("train_step")
    return bool(getattr(step, _WRAPPER_FLAG, False))


def install(model, step):
    """Installs `step` as `model.train_step` and rebuilds the function.

    The rebuilt train function removes the wrapper itself if a step raises
    (the exception propagates), so a failed fit leaves a clean model.
    """
    setattr(step, _WRAPPER_FLAG, True)
    model.__dict__["compute_metrics"] = capturing_compute_metrics(
        model.compute_metrics
    )
    model.__dict__["train_step"] = step
    model.make_train_function(force=True)
    inner = model.train_function

    def train_function(iterator):
        try:
            return inner(iterator)
        except (StopIteration, tf.errors.OutOfRangeError):
            raise
        except BaseException:
            remove(model)
            raise

    model.train_function = train_function


def remove(model):
    """Removes an installed wrapper (no-op otherwise). Returns True if any."""
    if not is_wrapped(model):
        return False
    del model.__dict__["train_step"]
    metrics_fn = model.__dict__.get("compute_metrics")
    if getattr(metrics_fn, _WRAPPER_FLAG, False):
        del model.__dict__["compute_metrics"]
    model.make_train_function(force=True)
    return True
