"""OverfittingGuard: fires on a real robust-accuracy collapse, not before."""

import keras
import numpy as np
import pytest

import keras_adv
from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.callbacks import OverfittingGuard


def _problem():
    """A 1-feature line model: class 1 iff x > 0.5, margin >= 0.3."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0.0, 0.2, 32), rng.uniform(0.8, 1.0, 32)])
    x = x.reshape(-1, 1).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    model.set_weights([np.array([[-10.0, 10.0]]), np.array([5.0, -5.0])])
    model.compile(
        keras.optimizers.SGD(0.0),  # weights change only through sabotage
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model, x, y


class Sabotage(keras.callbacks.Callback):
    """At the end of `epoch`, flips the classifier (a real accuracy drop)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            w, b = self.model.get_weights()
            self.model.set_weights([-w, -b])


def test_fires_on_a_real_drop_and_restores_previous_weights():
    model, x, y = _problem()
    good = [w.copy() for w in model.get_weights()]
    guard = OverfittingGuard((x, y), PGD(eps=0.1, steps=5, seed=0), drop=0.2)
    history = model.fit(
        x, y, epochs=5, verbose=0, callbacks=[Sabotage(1), guard]
    )
    accuracy = history.history["guard_robust_accuracy"]
    assert accuracy == [1.0, 0.0]  # PGD at eps 0.1 < margin 0.3: exact
    assert guard.stopped_epoch == 1
    assert len(history.history["loss"]) == 2
    for a, b in zip(model.get_weights(), good):
        np.testing.assert_array_equal(a, b)


def test_keeps_going_without_a_drop_and_without_restore():
    model, x, y = _problem()
    guard = OverfittingGuard((x, y), PGD(eps=0.1, steps=5, seed=0))
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[guard])
    assert history.history["guard_robust_accuracy"] == [1.0, 1.0, 1.0]
    assert guard.stopped_epoch is None

    model, x, y = _problem()
    guard = OverfittingGuard(
        (x, y), PGD(eps=0.1, steps=5), restore_best_weights=False
    )
    model.fit(x, y, epochs=3, verbose=0, callbacks=[Sabotage(0), guard])
    assert guard.stopped_epoch is None  # no previous epoch to compare


def test_works_with_adversarial_training_and_start_epoch():
    model, x, y = _problem()
    guard = OverfittingGuard((x, y), PGD(eps=0.1, steps=2), start_epoch=1)
    history = model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[AdversarialTraining(PGD(eps=0.1), "fgsm-rs"), guard],
    )
    assert len(history.history["guard_robust_accuracy"]) == 1


@pytest.mark.parametrize(
    "objective",
    ["adversarial", "fgsm_rs", "trades", "vat", "n_fgsm", "grad_align", "free"],
)
@pytest.mark.parametrize("path", ["callback", "model"])
def test_fires_with_every_objective(objective, path):
    model, x, y = _problem()
    good = [w.copy() for w in model.get_weights()]
    guard = OverfittingGuard((x, y), PGD(eps=0.1, steps=5, seed=0), drop=0.2)
    attack = PGD(eps=0.1, steps=2, seed=0)
    if path == "callback":
        trained = model
        callbacks = [AdversarialTraining(attack, objective), Sabotage(1), guard]
    else:
        trained = keras_adv.models.AdversarialModel(model, attack, objective)
        trained.compile(
            keras.optimizers.SGD(0.0),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        callbacks = [Sabotage(1), guard]
    history = trained.fit(x, y, epochs=4, verbose=0, callbacks=callbacks)
    assert history.history["guard_robust_accuracy"] == [1.0, 0.0]
    assert guard.stopped_epoch == 1
    for a, b in zip(model.get_weights(), good):
        np.testing.assert_array_equal(a, b)


def test_errors_and_config():
    x = np.zeros((4, 1), "float32")
    y = np.zeros(4, "int64")
    with pytest.raises(ValueError, match="drop"):
        OverfittingGuard((x, y), drop=5.0)
    with pytest.raises(ValueError, match="drop"):
        OverfittingGuard((x, y), drop=0.0)
    with pytest.raises(ValueError, match="data"):
        OverfittingGuard(x)
    with pytest.raises(TypeError, match="float"):
        OverfittingGuard((x.astype("uint8"), y))
    with pytest.raises(TypeError, match="attack"):
        OverfittingGuard((x, y), attack="pgd")
    guard = OverfittingGuard((x, y), PGD(eps=0.2), drop=0.3)
    config = guard.get_config()
    assert config["drop"] == 0.3
    restored = OverfittingGuard.from_config(config)
    np.testing.assert_array_equal(restored.x, x)
    assert restored.get_config() == config
    assert keras_adv.callbacks.OverfittingGuard is OverfittingGuard
