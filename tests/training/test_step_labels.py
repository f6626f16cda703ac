"""Labels entering adversarial training are checked in the graph: classes
of the model's outputs (`-1`, unlabelled, too for VAT), named in the
error instead of TensorFlow's kernel message."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from _linear_models import compiled
from _linear_models import linear

import keras_adv
from keras_adv.attacks import PGD
from keras_adv.models import AdversarialModel
from keras_adv.training import VAT

FEATURES, CLASSES = 3, 4
X = np.random.default_rng(0).uniform(size=(16, FEATURES)).astype("float32")


def labels(bad=None):
    y = np.arange(16) % CLASSES
    if bad is not None:
        y[5] = bad
    return y


class Subclassed(keras.Model):
    """A classifier whose structure tells nothing of its outputs."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(CLASSES)

    def call(self, x):
        return self.dense(x)


def adversarial(base=None, objective=None):
    attack = PGD(eps=0.05, steps=2, seed=0)
    model = AdversarialModel(
        base or linear(FEATURES, CLASSES),
        None if objective else attack,
        objective=objective or "adversarial",
    )
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


@pytest.mark.parametrize("bad", [-1, CLASSES, 9])
def test_madry_training_names_labels_outside_the_classes(bad):
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"argument `y`. Expected class labels in \[0, num_classes\)",
    ):
        adversarial().fit(X, labels(bad), epochs=1, verbose=0)


def test_the_callback_checks_the_labels_of_the_users_model():
    model = compiled(linear(FEATURES, CLASSES), 0.1)
    callback = keras_adv.callbacks.AdversarialTraining(
        PGD(eps=0.05, steps=2, seed=0)
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="argument `y`"):
        model.fit(X, labels(-1), epochs=1, verbose=0, callbacks=[callback])


def test_a_subclassed_model_is_checked_too():
    base = Subclassed()
    base(X[:1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="argument `y`"):
        adversarial(base).fit(X, labels(-1), epochs=1, verbose=0)


def test_one_hot_labels_of_another_width_are_refused_when_traced():
    with pytest.raises(ValueError, match="one-hot rows of 4 classes"):
        adversarial().fit(X, np.eye(3)[labels() % 3], epochs=1, verbose=0)


def test_vat_keeps_minus_one_as_unlabelled_but_not_other_labels():
    objective = VAT(PGD(eps=0.05, steps=1, seed=0), xi=1e-3)
    history = adversarial(objective=objective).fit(
        X, labels(-1), epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"\[-1, num_classes\)"
    ):
        adversarial(objective=objective).fit(
            X, labels(CLASSES), epochs=1, verbose=0
        )
