"""Tests of AdversarialModel (the compile/fit wrapper)."""

import keras
import numpy as np
import pytest

import keras_adv
from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.models import AdversarialModel
from keras_adv.testing import run_model_saving_test

FEATURES = 6
CLASSES = 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(96, FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, size=96)
    return x, y


def base(seed=0):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8, activation="relu", kernel_initializer=init),
            keras.layers.Dense(CLASSES, kernel_initializer=init),
        ]
    )


def compile_(model):
    model.compile(
        "sgd",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


@pytest.fixture(scope="module")
def trained(data):
    model = compile_(AdversarialModel(base(), PGD(eps=0.2, steps=2, seed=0)))
    x, y = data
    history = model.fit(
        x,
        y,
        batch_size=32,
        epochs=2,
        verbose=0,
        shuffle=False,
        validation_data=(x, y),
    )
    return model, history


def test_logs(trained):
    _, history = trained
    h = history.history
    # Trained on x_adv alone: Keras' loss and accuracy measure x_adv, each
    # logged once; validation is clean.
    assert sorted(h) == ["adv_accuracy", "loss", "val_accuracy", "val_loss"]
    assert 0.0 <= min(h["adv_accuracy"]) <= max(h["adv_accuracy"]) <= 1.0


def test_same_engine_as_callback(data, trained):
    model, _ = trained
    plain = compile_(base())
    x, y = data
    plain.fit(
        x,
        y,
        batch_size=32,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=[AdversarialTraining(PGD(eps=0.2, steps=2, seed=0))],
    )
    for a, b in zip(plain.get_weights(), model.base_model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_base_model_is_the_deployable_model(data, trained):
    model, _ = trained
    x, _ = data
    np.testing.assert_allclose(
        model.predict(x, verbose=0),
        model.base_model.predict(x, verbose=0),
        atol=1e-6,
    )


def test_keras_round_trip(data, trained):
    model, _ = trained
    x, y = data
    loaded = run_model_saving_test(model, x)  # same outputs
    assert isinstance(loaded, AdversarialModel)
    assert isinstance(loaded.objective, keras_adv.training.Madry)
    assert isinstance(loaded.attack, PGD) and loaded.attack.steps == 2
    config, loaded_config = model.get_config(), loaded.get_config()
    config.pop("base_model"), loaded_config.pop("base_model")
    assert loaded_config == config
    assert isinstance(loaded.base_model, keras.Sequential)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    loaded.fit(x, y, epochs=1, verbose=0)  # compiled state restored


@pytest.mark.parametrize("objective", ["fgsm-rs", "trades", "vat"])
def test_other_objectives(data, objective):
    model = compile_(
        AdversarialModel(base(), PGD(eps=0.1, steps=2), objective=objective)
    )
    history = model.fit(*data, epochs=1, verbose=0)
    h = history.history
    assert np.isfinite(h["adv_accuracy"][0]) and np.isfinite(h["loss"][0])
    # adv_loss only where `loss` is not already the adversarial one.
    assert ("adv_loss" in h) == (objective != "fgsm-rs")


def test_errors():
    with pytest.raises(TypeError, match="base_model"):
        AdversarialModel("model", PGD())
    with pytest.raises(TypeError, match="attack"):
        AdversarialModel(base(), None)
    with pytest.raises(ValueError, match="objective"):
        AdversarialModel(base(), PGD(), objective="no_such_objective")
    inputs = keras.Input((FEATURES,))
    two = keras.Model(
        inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(2)(inputs)]
    )
    with pytest.raises(ValueError, match="single output"):
        AdversarialModel(two, PGD())
    assert keras_adv.models.AdversarialModel is AdversarialModel
