"""`keras_adv.callbacks._install`: the step is installed for one `fit` only.

The Keras behaviour the installation relies on (instance overrides, the
order of `make_train_function` and `on_train_begin`, the train function
read on every step) is pinned in `tests/test_keras_internals.py`.
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
