"""The adversarial training step, written against Keras' public overrides.

`AdversarialStep` holds an objective, the adversarial-metric trackers and
an optional eps scale. Its three methods are what `AdversarialModel`'s
`train_step`, `compute_loss` and `compute_metrics` overrides call, and what
the `AdversarialTraining` callback installs on a user's model for the
duration of `fit`:

* `train_step`: builds `x_adv` before the tape, then calls the model's own
  `train_step` (Keras' or the user's) on the objective's training batch;
* `compute_loss`: the compiled loss plus the objective's extra term;
* `compute_metrics`: the compiled metrics plus `adv_loss`/`adv_accuracy`.

Every quantity is logged once, under a name that says what it measures
(`adversarial_logs`): `loss` is always the loss being minimised; when the
model trains on `x_adv` alone, Keras' compiled metrics measured `x_adv`
and carry an `adv_` prefix (`adv_accuracy`), and `adv_loss` is logged
only if an extra term makes `loss` differ from it; otherwise they keep
their names and `adv_loss`/`adv_accuracy` measure `x_adv` besides.

The batch being trained is passed from `train_step` to the two hooks
through a per-thread slot, set only while the step is traced.
"""

import contextlib
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _keras_internals as internals
from keras_adv import _random
from keras_adv import losses as margin
from keras_adv._outputs import sparse_labels
from keras_adv._types import Tensor
from keras_adv._validation import input_assertions
from keras_adv._validation import label_assertions
from keras_adv.distribute._replicas import scale_for_replicas
from keras_adv.training._objective import Objective

ADV_PREFIX = "adv_"
ADV_LOSS = "adv_loss"
ADV_ACCURACY = "adv_accuracy"
LOSS = "loss"  # Keras' key of the loss being minimised


def adversarial_logs(
    logs: Mapping[str, Any],
    loss: Tensor,
    accuracy: Tensor,
    on_x_adv: bool,
    with_loss: bool,
) -> dict[str, Any]:
    """The step's logs, each quantity once, named after what it measures.

    Args:
        logs: The logs of the model's own step (`loss` and the compiled
            metrics, maybe already `adv_loss`/`adv_accuracy` trackers).
        loss: The cross-entropy on `x_adv` (the `adv_loss` tracker's
            result).
        accuracy: The accuracy on `x_adv` (the `adv_accuracy` tracker's
            result).
        on_x_adv: Whether the compiled metrics of `logs` were measured on
            `x_adv` alone (the model trained on the adversarial batch
            only): they become `adv_<name>`.
        with_loss: Whether to log `adv_loss`; False when `loss` already is
            the loss on `x_adv` (trained on `x_adv` alone, no extra term).

    Returns:
        A new dict.
    """
    trackers = (ADV_LOSS, ADV_ACCURACY)
    logs = {
        k if k == LOSS or k in trackers or not on_x_adv else ADV_PREFIX + k: v
        for k, v in logs.items()
        if k != ADV_LOSS
    }
    if with_loss:
        logs[ADV_LOSS] = loss
    logs[ADV_ACCURACY] = accuracy
    return logs


class _Slot(threading.local):
    """Per-thread slot (MirroredStrategy traces replicas in threads)."""

    batch: "_Batch | None" = None


_SLOT = _Slot()


class _Batch:
    """What the hooks need to know about the batch being traced."""

    def __init__(
        self,
        step: "AdversarialStep",
        x: Tensor,
        y: Tensor | None,
        sample_weight: Tensor | None,
        x_adv: Tensor | None,
        eps: Tensor,
        seed: Tensor,
        network: keras.Model | None = None,
    ) -> None:
        self.step = step
        # The network the objective sees (AdversarialModel's base_model).
        self.network = network
        self.eps = eps
        self.seed = seed
        self.x = x
        self.y = y
        self.sample_weight = sample_weight
        self.x_adv = x_adv
        self.adv_pred = None
        self.loss_called = False
        self.metrics_called = False


@contextlib.contextmanager
def _tracing(batch: _Batch) -> Iterator[_Batch]:
    previous = _SLOT.batch
    _SLOT.batch = batch
    try:
        yield batch
    finally:
        _SLOT.batch = previous


def _is_nested(value: object) -> bool:
    return isinstance(value, list | tuple | dict)


class AdversarialStep:
    """One adversarial training step for `objective` (internal engine).

    Args:
        objective: A `keras_adv.training.Objective`.
        owner: Name used in error messages.
        trackers: `(adv_loss, adv_accuracy)` Mean metrics.
        eps_scale: Optional scalar variable multiplying eps (warm-up).
        eps_ramp: Optional `(start, steps)`: eps also ramps linearly per
            optimizer step, `min(1, (iterations - start + 1) / steps)`,
            with `start` a scalar variable (the optimizer step the ramp
            starts at) and `steps` an int >= 1.
    """

    def __init__(
        self,
        objective: Objective,
        owner: str,
        trackers: tuple[keras.metrics.Mean, keras.metrics.Mean],
        eps_scale: tf.Variable | None = None,
        eps_ramp: tuple[tf.Variable, int] | None = None,
    ) -> None:
        self.objective = objective
        self.owner = owner
        self.trackers = trackers
        self.eps_scale = eps_scale
        self.eps_ramp = eps_ramp

    def ramp_scale(self, model: keras.Model) -> Tensor:
        """The per-step eps ramp's multiplier for the coming update."""
        start, steps = self.eps_ramp  # type: ignore[misc]
        done = ops.cast(model.optimizer.iterations, "float32") - ops.cast(
            start, "float32"
        )
        return ops.clip((done + 1.0) / float(steps), 0.0, 1.0)

    # ---------------------------------------------------------- checks
    def check_structure(self, model: keras.Model) -> None:
        """Single input, single output (where the model declares them)."""
        for attribute, what in (("outputs", "output"), ("inputs", "input")):
            try:
                values = getattr(model, attribute, None)
            except (AttributeError, ValueError):
                values = None
            if values is not None and len(values) > 1:
                raise ValueError(
                    f"{self.owner} supports models with a single {what} "
                    f"tensor. Received: model {model.name!r} with "
                    f"{len(values)} {what}s."
                )

    def check_compiled_loss(
        self, model: keras.Model, attack_model: keras.Model | None = None
    ) -> None:
        """Refuses a compiled loss that contradicts the model's outputs.

        A model whose last layer outputs logits, compiled with a loss that
        expects probabilities (`from_logits=False`), or the reverse, trains
        on a wrong loss (plain Keras accepts it silently). The objective
        checks what it needs too (`Objective.check_model`).
        """
        from keras_adv._outputs import output_kind

        attack_model = model if attack_model is None else attack_model
        self.objective.check_model(model, attack_model)
        loss = getattr(model, "loss", None)
        get_config = getattr(loss, "get_config", None)
        if get_config is None:
            return
        try:
            loss_from_logits = get_config().get("from_logits")
        except (TypeError, NotImplementedError):
            return
        kind = output_kind(attack_model)
        if loss_from_logits is None or kind is None:
            return
        if bool(loss_from_logits) != (kind == "logits"):
            expected = (
                "from_logits=True"
                if kind == "logits"
                else ("from_logits=False")
            )
            raise ValueError(
                f"The model {attack_model.name!r} outputs {kind} but was "
                f"compiled with {type(loss).__name__}(from_logits="
                f"{bool(loss_from_logits)}). Compile it with {expected}."
            )

    def _check_batch(self, x: Any, y: Any) -> None:
        if _is_nested(x):
            raise ValueError(
                f"{self.owner} supports models with a single input tensor. "
                f"Received: x of type {type(x).__name__}."
            )
        if _is_nested(y):
            raise ValueError(
                f"{self.owner} supports models with a single output; "
                f"received nested labels y of type {type(y).__name__}."
            )
        if y is None and self.objective.needs_labels():
            raise ValueError(
                f"The {type(self.objective).__name__} objective needs "
                "labels: fit on (x, y) pairs. Received: data without y."
            )
        self.objective.train_attack.check_input_types(
            x, y if self.objective.needs_labels() else None
        )

    def label_checks(
        self, model: keras.Model, x: Tensor, y: Tensor | None
    ) -> list[tf.Operation | None]:
        """In-graph: the labels `y` are classes of `model`'s outputs.

        Integers in `[0, classes)` (one-hot rows `classes` wide), `-1`
        (unlabelled) too for objectives that take unlabelled batches
        (VAT). One min and one max over the labels: a negligible cost.
        Without a known number of classes (a subclassed model whose
        output shape cannot be inferred) the check is left to the loss.
        """
        if y is None:
            return []
        classes = _output_classes(model, x)
        if classes is None:
            return []
        unlabelled = not self.objective.needs_labels()
        return label_assertions(y, classes, unlabelled=unlabelled)

    # ------------------------------------------------------------ seeds
    def seed(self, model: keras.Model) -> Tensor:
        """A stateless seed: the attack's seed, the step, the replica id."""
        return _random.step_seed(
            self.objective.attack.seed, model.optimizer.iterations
        )

    # ------------------------------------------------------------- step
    def train_step(
        self,
        model: keras.Model,
        base_train_step: Callable[[Any], dict[str, Any]],
        data: Any,
        attack_model: keras.Model | None = None,
    ) -> dict[str, Any]:
        """Builds `x_adv`, then runs `base_train_step` on the training batch.

        Args:
            model: The model being trained.
            base_train_step: The model's own step, `data -> logs`.
            data: The batch as given to `train_step`.
            attack_model: The model the attack differentiates (defaults to
                `model`).
        """
        attack_model = model if attack_model is None else attack_model
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self._check_batch(x, y)
        objective = self.objective
        eps = ops.cast(objective.attack.eps, "float32")
        if self.eps_scale is not None:
            eps = eps * ops.cast(self.eps_scale, "float32")
        if self.eps_ramp is not None:
            eps = eps * self.ramp_scale(model)
        labels = y if objective.needs_labels() else None
        checks = input_assertions(x, objective.attack.value_range, labels)
        checks += self.label_checks(attack_model, x, y)
        with tf.control_dependencies(checks):
            x = tf.identity(x)
        seed = self.seed(model)
        if objective.replaces_train_step:
            # Free-m: the objective writes the whole step (one backward
            # pass gives the weight and the input gradient).
            # `train_step` exists where `replaces_train_step` is True.
            logs, adv_pred = objective.train_step(  # type: ignore[attr-defined]
                model, x, y, sample_weight, eps, seed
            )
            batch = _Batch(self, x, y, sample_weight, None, eps, seed)
            self._update_trackers(model, batch, adv_pred)
            return self._with_tracker_results(logs, on_x_adv=True)
        x_adv = objective.adversarial_examples(attack_model, x, y, eps, seed)
        train_x, train_y, train_sw = objective.training_data(
            x, y, sample_weight, x_adv
        )
        batch = _Batch(
            self, x, y, sample_weight, x_adv, eps, seed, network=attack_model
        )
        with _tracing(batch):
            logs = base_train_step(
                keras.utils.pack_x_y_sample_weight(train_x, train_y, train_sw)
            )
        if not batch.loss_called and self._has_extra_loss():
            raise ValueError(
                f"The {type(objective).__name__} objective adds its term in "
                "`compute_loss`, but the model's `train_step` never called "
                "`self.compute_loss(...)`. Call it from your train_step, or "
                "use the Madry objective (which only substitutes the batch)."
            )
        if not batch.metrics_called:
            # The model's own step logged what it measured: keep it all.
            self._update_trackers(model, batch, None)
            logs = self._with_tracker_results(logs, on_x_adv=False)
        return logs

    def _has_extra_loss(self) -> bool:
        return type(self.objective).extra_loss is not _base_extra_loss()

    # ------------------------------------------------------------ hooks
    def compute_loss(
        self,
        model: keras.Model,
        base_compute_loss: Callable[..., Tensor],
        x: Tensor,
        y: Tensor | None,
        y_pred: Tensor,
        sample_weight: Tensor | None,
        training: bool,
    ) -> Tensor:
        """The compiled loss plus the objective's term (inside the tape)."""
        batch = _SLOT.batch
        if batch is None or batch.step is not self or not training:
            return base_compute_loss(x, y, y_pred, sample_weight, training)
        batch.loss_called = True
        if y is None:
            # No labels (VAT on unlabelled data): regularisers only.
            loss = ops.zeros((), "float32")
            for extra in model.losses:
                loss = loss + ops.cast(ops.sum(extra), "float32")
        else:
            loss = base_compute_loss(x, y, y_pred, sample_weight, training)
        term, adv_pred = self.objective.extra_loss(
            model if batch.network is None else batch.network,
            batch.x,
            batch.y,
            y_pred,
            batch.sample_weight,
            batch.x_adv,
            eps=batch.eps,
            seed=batch.seed,
        )
        if adv_pred is not None:
            batch.adv_pred = adv_pred
        if term is None:
            return loss
        term = scale_for_replicas(ops.cast(term, "float32"))
        return loss + ops.cast(term, loss.dtype)

    def compute_metrics(
        self,
        model: keras.Model,
        base_compute_metrics: Callable[..., dict[str, Any]],
        x: Tensor,
        y: Tensor | None,
        y_pred: Tensor,
        sample_weight: Tensor | None,
    ) -> dict[str, Any]:
        """The model's metrics and the adversarial ones, each logged once."""
        batch = _SLOT.batch
        if batch is None or batch.step is not self:
            return base_compute_metrics(x, y, y_pred, sample_weight)
        batch.metrics_called = True
        if batch.adv_pred is None:
            batch.adv_pred = self.objective.adversarial_predictions(
                batch.x, y_pred
            )
        self._update_trackers(model, batch, batch.adv_pred)
        if y is None:
            # Keras cannot update compiled metrics without labels.
            logs = {LOSS: _loss_result(model)}
        else:
            logs = base_compute_metrics(x, y, y_pred, sample_weight)
        # Keras' metrics measured x_adv alone when the adversarial
        # predictions are the step's own (the substitution objectives).
        return self._with_tracker_results(
            logs, on_x_adv=batch.adv_pred is y_pred
        )

    # ---------------------------------------------------------- metrics
    def _update_trackers(
        self, model: keras.Model, batch: _Batch, adv_pred: Tensor | None
    ) -> None:
        if batch.y is None:
            return
        if adv_pred is None:
            adv_pred = model(batch.x_adv, training=False)
        y = batch.y
        weight = batch.sample_weight
        if not self.objective.needs_labels():  # VAT: -1 marks unlabelled
            from keras_adv.training._regularised import labelled_mask

            y, weight = labelled_mask(y, weight)
        adapter = self.objective.model_logits(model)
        logits = adapter.head(adv_pred)
        labels = sparse_labels(y)
        ce = margin.cross_entropy(labels, logits)
        correct = ops.cast(
            ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), labels),
            "float32",
        )
        if weight is not None:
            weight = ops.cast(ops.reshape(weight, [-1]), "float32")
        loss_tracker, accuracy_tracker = self.trackers
        loss_tracker.update_state(ce, sample_weight=weight)
        accuracy_tracker.update_state(correct, sample_weight=weight)

    def _with_tracker_results(
        self, logs: Mapping[str, Any], on_x_adv: bool
    ) -> dict[str, Any]:
        # Trained on x_adv alone without an extra term, `loss` is the
        # compiled loss on x_adv: adv_loss would repeat it.
        loss_tracker, accuracy_tracker = self.trackers
        return adversarial_logs(
            logs,
            loss_tracker.result(),
            accuracy_tracker.result(),
            on_x_adv=on_x_adv,
            with_loss=not on_x_adv or self._has_extra_loss(),
        )


def _output_classes(model: keras.Model, x: Tensor) -> int | None:
    """The static number of classes `model` outputs for `x`, or None."""
    try:
        shape = model.outputs[0].shape
    except (AttributeError, IndexError, TypeError, ValueError):
        try:  # a subclassed model: its symbolic output (no computation)
            inputs = keras.KerasTensor(x.shape, x.dtype)
            shape = model.compute_output_spec(inputs).shape
        except Exception:  # noqa: BLE001 - any model; the loss still checks
            return None
    if len(shape) != 2 or shape[-1] is None:
        return None
    return int(shape[-1])


def _loss_result(model: keras.Model) -> Tensor:
    tracker = internals.loss_tracker(model)
    return ops.zeros(()) if tracker is None else tracker.result()


def _base_extra_loss() -> Callable[..., Any]:
    from keras_adv.training._objective import Objective

    return Objective.extra_loss
