"""Installs an `AdversarialStep` on an existing model for one `fit`.

It relies on Keras behaviour beyond its documented override points, all
of it through `keras_adv/_keras_internals.py` (sections 1 and 2, pinned by
`tests/test_keras_internals.py`): `fit` calls `make_train_function()`
before the callbacks' `on_train_begin` and reads `model.train_function`
on every step; the train function calls `train_step`, and Keras'
`train_step` calls `compute_loss` and `compute_metrics`, all looked up on
the instance.

Installing puts `train_step`, `compute_loss`, `compute_metrics` and
`make_train_function` in the model's instance `__dict__` (the class and
any user override stay untouched) and rebuilds the train function.
Removing deletes them and rebuilds it. A model never stays wrapped: the
installation removes itself when a step raises, and when a later `fit`
(which calls `make_train_function`) finds it left behind by a fit that
ended with an exception elsewhere (a callback raising, KeyboardInterrupt).
"""

import inspect
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf

from keras_adv import _keras_internals as internals
from keras_adv._types import Tensor
from keras_adv.training._step import AdversarialStep

_NAMES = (
    "train_step",
    "compute_loss",
    "compute_metrics",
    "make_train_function",
)


def installation(model: keras.Model) -> "Installation | None":
    """The active `Installation` on `model`, or None."""
    owner = internals.overrider(model, "train_step")
    return owner if isinstance(owner, Installation) else None


def _accepts_training(method: Callable[..., Any]) -> bool:
    try:
        return "training" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class Installation:
    """One installation of `step` on `model` (see the module docstring)."""

    def __init__(
        self, model: keras.Model, step: AdversarialStep, owner: str
    ) -> None:
        self.model = model
        self.step = step
        self.owner = owner

    def install(self) -> None:
        model = self.model
        step = self.step
        base_train_step = model.train_step
        base_compute_loss = model.compute_loss
        base_compute_metrics = model.compute_metrics
        loss_has_training = _accepts_training(base_compute_loss)

        def call_base_loss(
            x: Tensor,
            y: Tensor | None,
            y_pred: Tensor,
            sample_weight: Tensor | None,
            training: bool,
        ) -> Tensor:
            if loss_has_training:
                return base_compute_loss(
                    x, y, y_pred, sample_weight, training=training
                )
            return base_compute_loss(x, y, y_pred, sample_weight)

        def train_step(data: Any) -> dict[str, Any]:
            return step.train_step(model, base_train_step, data)

        def compute_loss(
            x: Tensor | None = None,
            y: Tensor | None = None,
            y_pred: Tensor | None = None,
            sample_weight: Tensor | None = None,
            training: bool = True,
        ) -> Tensor:
            return step.compute_loss(
                model, call_base_loss, x, y, y_pred, sample_weight, training
            )

        def compute_metrics(
            x: Tensor,
            y: Tensor | None,
            y_pred: Tensor,
            sample_weight: Tensor | None = None,
        ) -> dict[str, Any]:
            return step.compute_metrics(
                model, base_compute_metrics, x, y, y_pred, sample_weight
            )

        def make_train_function(force: bool = False) -> Callable[..., Any]:
            # Called by a new `fit` while a stale installation is left.
            self.remove()
            return model.make_train_function(force=force)

        internals.override(
            model,
            self,
            {
                "train_step": train_step,
                "compute_loss": compute_loss,
                "compute_metrics": compute_metrics,
                "make_train_function": make_train_function,
            },
        )
        internals.rebuild_train_function(model)
        internals.wrap_train_function(model, self._removed_on_error)

    def _removed_on_error(
        self, inner: Callable[[Iterator[Any]], Any]
    ) -> Callable[[Iterator[Any]], Any]:
        def train_function(iterator: Iterator[Any]) -> Any:
            try:
                return inner(iterator)
            except (StopIteration, tf.errors.OutOfRangeError):
                raise
            except BaseException:
                self.remove()
                raise

        return train_function

    def remove(self) -> bool:
        """Removes the installation (idempotent). Returns True if it was on."""
        model = self.model
        if installation(model) is not self:
            return False
        internals.remove_overrides(model, self, _NAMES)
        internals.rebuild_train_function(model)
        return True
