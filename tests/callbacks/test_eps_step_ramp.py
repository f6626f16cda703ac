"""`AdversarialTraining(eps_warmup_steps=N)`: eps ramps per optimizer step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.training import Madry

EPS = 0.2


class _Recording(Madry):
    """Madry that stores the eps of the last step in a variable."""

    def __init__(self, attack):
        super().__init__(attack)
        self.seen = tf.Variable(-1.0, trainable=False)

    def adversarial_examples(self, model, x, y, eps, seed):
        self.seen.assign(tf.cast(eps, "float32"))
        return super().adversarial_examples(model, x, y, eps, seed)


class _Log(keras.callbacks.Callback):
    def __init__(self, objective):
        super().__init__()
        self.objective = objective
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(float(self.objective.seen.numpy()))


def _fit(callback, epochs, objective):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 4)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    log = _Log(objective)
    model.fit(
        x, y, batch_size=10, epochs=epochs, callbacks=[callback, log], verbose=0
    )
    return log.values


def test_eps_ramps_per_step_from_the_start_epoch():
    objective = _Recording(PGD(eps=EPS, steps=1))
    callback = AdversarialTraining(
        objective=objective, start_epoch=1, eps_warmup_steps=6
    )
    values = _fit(callback, 3, objective)
    # Epoch 0 is clean (no attack: the variable keeps -1); from epoch 1,
    # update k (0-based) since the start trains at eps * min(1, (k+1)/6).
    assert values[:4] == [-1.0] * 4
    expected = [EPS * min(1.0, (k + 1) / 6) for k in range(8)]
    np.testing.assert_allclose(values[4:], expected, rtol=1e-6)
    plain = AdversarialTraining(PGD(eps=EPS, steps=1), eps_warmup_steps=6)
    config = plain.get_config()
    assert config["eps_warmup_steps"] == 6
    assert AdversarialTraining.from_config(config).eps_warmup_steps == 6


def test_the_epoch_ramp_is_unchanged():
    objective = _Recording(PGD(eps=EPS, steps=1))
    callback = AdversarialTraining(objective=objective, eps_warmup_epochs=2)
    values = _fit(callback, 2, objective)
    np.testing.assert_allclose(values, [EPS / 2] * 4 + [EPS] * 4, rtol=1e-6)


def test_bad_ramps_name_the_argument():
    attack = PGD(eps=EPS, steps=1)
    with pytest.raises(ValueError, match="eps_warmup_steps"):
        AdversarialTraining(attack, eps_warmup_epochs=2, eps_warmup_steps=5)
    with pytest.raises(ValueError, match="eps_warmup_steps"):
        AdversarialTraining(attack, eps_warmup_steps=-1)


def test_a_ramp_longer_than_training_warns():
    objective = _Recording(PGD(eps=EPS, steps=1))
    callback = AdversarialTraining(objective=objective, eps_warmup_steps=8)
    with pytest.warns(UserWarning, match="never reached"):
        _fit(callback, 2, objective)
