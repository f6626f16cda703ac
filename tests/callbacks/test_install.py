"""Pins the Keras behaviour that `keras_adv.callbacks._install` relies on.

`AdversarialTraining` installs a step on an existing model through its
instance `__dict__`. If a Keras upgrade changes any of the behaviours below,
these tests fail loudly (instead of adversarial training silently becoming
clean training).
"""

import keras
import numpy as np

from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def _data():
    x = np.random.default_rng(0).uniform(size=(8, 3)).astype("float32")
    return x, (x[:, 0] > 0.5).astype("int64")


class _Order(keras.callbacks.Callback):
    def __init__(self, events):
        super().__init__()
        self.events = events

    def on_train_begin(self, logs=None):
        self.events.append("on_train_begin")


def test_fit_makes_the_train_function_before_on_train_begin():
    model = _model()
    events = []
    original = model.make_train_function

    def make_train_function(force=False):
        events.append(("make_train_function", force))
        return original(force=force)

    model.__dict__["make_train_function"] = make_train_function
    model.fit(*_data(), epochs=1, verbose=0, callbacks=[_Order(events)])
    assert events[:2] == [("make_train_function", False), "on_train_begin"]


def test_instance_train_step_compute_loss_and_metrics_are_used():
    model = _model()
    calls = []
    base_step = model.train_step
    base_loss = model.compute_loss
    base_metrics = model.compute_metrics

    def train_step(data):
        calls.append("train_step")
        return base_step(data)

    def compute_loss(
        x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        calls.append("compute_loss")
        return base_loss(x, y, y_pred, sample_weight, training=training)

    def compute_metrics(x, y, y_pred, sample_weight=None):
        calls.append("compute_metrics")
        return base_metrics(x, y, y_pred, sample_weight)

    model.__dict__.update(
        train_step=train_step,
        compute_loss=compute_loss,
        compute_metrics=compute_metrics,
    )
    model.make_train_function(force=True)
    model.fit(*_data(), epochs=1, verbose=0)
    assert calls[:3] == ["train_step", "compute_loss", "compute_metrics"]


def test_train_function_is_read_on_every_step():
    model = _model()
    seen = []
    inners = []

    class Swap(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if not inners:
                inners.append(model.train_function)
            inner = inners[0]

            def train_function(iterator):
                seen.append(epoch)
                return inner(iterator)

            model.train_function = train_function

    model.fit(*_data(), epochs=2, batch_size=4, verbose=0, callbacks=[Swap()])
    assert seen == [0, 0, 1, 1]


def test_installed_step_is_gone_after_fit():
    model = _model()
    model.fit(
        *_data(),
        epochs=1,
        verbose=0,
        callbacks=[AdversarialTraining(PGD(eps=0.1, steps=1))],
    )
    names = ("train_step", "compute_loss", "compute_metrics")
    assert not any(n in vars(model) for n in names + ("make_train_function",))
