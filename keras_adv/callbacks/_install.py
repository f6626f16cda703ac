"""Installs an `AdversarialStep` on an existing model for one `fit`.

The only module of keras_adv that relies on Keras behaviour beyond its
documented override points (pinned by `tests/callbacks/test_install.py`):

1. `fit` calls `model.make_train_function()` and then the callbacks'
   `on_train_begin`, and calls `model.train_function` on every step;
2. the train function that `make_train_function(force=True)` builds calls
   `model.train_step`, and Keras' `train_step` calls `model.compute_loss`
   and `model.compute_metrics`, all looked up on the instance.

Installing puts `train_step`, `compute_loss`, `compute_metrics` and
`make_train_function` in the model's instance `__dict__` (the class and
any user override stay untouched) and rebuilds the train function.
Removing deletes them and rebuilds it. A model never stays wrapped: the
installation removes itself when a step raises, and when a later `fit`
(which calls `make_train_function`) finds it left behind by a fit that
ended with an exception elsewhere (a callback raising, KeyboardInterrupt).
"""

import inspect

import tensorflow as tf

_MARK = "_keras_adv_installation"
_NAMES = (
    "train_step",
    "compute_loss",
    "compute_metrics",
    "make_train_function",
)


def installation(model):
    """The active `Installation` on `model`, or None."""
    step = model.__dict__.get("train_step")
    return getattr(step, _MARK, None)


def _accepts_training(method):
    try:
        return "training" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class Installation:
    """One installation of `step` on `model` (see the module docstring)."""

    def __init__(self, model, step, owner):
        self.model = model
        self.step = step
        self.owner = owner

    def install(self):
        model = self.model
        step = self.step
        base_train_step = model.train_step
        base_compute_loss = model.compute_loss
        base_compute_metrics = model.compute_metrics
        loss_has_training = _accepts_training(base_compute_loss)

        def call_base_loss(x, y, y_pred, sample_weight, training):
            if loss_has_training:
                return base_compute_loss(
                    x, y, y_pred, sample_weight, training=training
                )
            return base_compute_loss(x, y, y_pred, sample_weight)

        def train_step(data):
            return step.train_step(model, base_train_step, data)

        def compute_loss(
            x=None, y=None, y_pred=None, sample_weight=None, training=True
        ):
            return step.compute_loss(
                model, call_base_loss, x, y, y_pred, sample_weight, training
            )

        def compute_metrics(x, y, y_pred, sample_weight=None):
            return step.compute_metrics(
                model, base_compute_metrics, x, y, y_pred, sample_weight
            )

        def make_train_function(force=False):
            # Called by a new `fit` while a stale installation is left.
            self.remove()
            return model.make_train_function(force=force)

        functions = {
            "train_step": train_step,
            "compute_loss": compute_loss,
            "compute_metrics": compute_metrics,
            "make_train_function": make_train_function,
        }
        for name, fn in functions.items():
            setattr(fn, _MARK, self)
            model.__dict__[name] = fn
        type(model).make_train_function(model, force=True)
        inner = model.train_function

        def train_function(iterator):
            try:
                return inner(iterator)
            except (StopIteration, tf.errors.OutOfRangeError):
                raise
            except BaseException:
                self.remove()
                raise

        model.train_function = train_function

    def remove(self):
        """Removes the installation (idempotent). Returns True if it was on."""
        model = self.model
        if installation(model) is not self:
            return False
        for name in _NAMES:
            fn = model.__dict__.get(name)
            if getattr(fn, _MARK, None) is self:
                del model.__dict__[name]
        type(model).make_train_function(model, force=True)
        return True
