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


# ------------------------------------------- attacks with trained networks
IMAGE = (2, 2, 1)


def image_base():
    init = keras.initializers.GlorotUniform(seed=0)
    return keras.Sequential(
        [
            keras.Input(IMAGE),
            keras.layers.Flatten(),
            keras.layers.Dense(CLASSES, kernel_initializer=init),
        ]
    )


def generator_attack():
    inputs = keras.Input(IMAGE)
    raw = keras.layers.Dense(1)(inputs)
    bound = keras_adv.layers.PerturbationBound(0.2)(raw)
    return keras_adv.attacks.GeneratorAttack(
        keras.Model(inputs, bound), eps=0.2
    )


def latent_attack():
    cvae = keras_adv.models.cvae_mnist_fc(
        hidden=8, latent_dim=2, input_shape=IMAGE, seed=0
    )
    learned = keras_adv.threat_models.LearnedPerturbationSet(cvae, radius=1.0)
    return keras_adv.attacks.LatentPGD(learned, steps=3, seed=0)


def trained_weights(attack):
    """Weights no initialiser gives: a stand-in for trained networks."""
    rng = np.random.default_rng(5)
    cvae = getattr(attack.threat_model, "cvae", None)
    if cvae is None:
        networks = [attack.generator]
    else:
        networks = [cvae.prior, cvae.recognition, cvae.decoder]
    for network in networks:
        network.set_weights(
            [rng.normal(size=w.shape) for w in network.get_weights()]
        )
    return attack


@pytest.mark.parametrize("make_attack", [generator_attack, latent_attack])
def test_the_attacks_trained_networks_round_trip(tmp_path, make_attack):
    model = compile_(
        AdversarialModel(image_base(), trained_weights(make_attack()))
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, size=(8,) + IMAGE).astype("float32")
    y = rng.integers(0, CLASSES, 8)
    model.fit(x, y, epochs=1, verbose=0)

    def attacked(m):  # a fixed seed: the attack's own has moved in fit
        return np.asarray(m.attack.perturb(m.base_model, x, y, seed=7))

    expected = attacked(model)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(attacked(loaded), expected, atol=1e-6)
    # Without the saved networks the attack would differ.
    fresh = AdversarialModel.from_config(model.get_config())
    assert not np.allclose(attacked(fresh), expected, atol=1e-3)
    # And through save_weights / load_weights (BackupAndRestore's way).
    weights = str(tmp_path / "model.weights.h5")
    model.save_weights(weights)
    fresh.load_weights(weights)
    np.testing.assert_allclose(attacked(fresh), expected, atol=1e-6)


def test_files_without_the_attack_networks_warn_and_mismatches_raise():
    model = AdversarialModel(image_base(), trained_weights(latent_attack()))
    store = {}
    model.save_own_variables(store)
    assert store and all(k.startswith("attack_") for k in store)
    fresh = AdversarialModel.from_config(model.get_config())
    with pytest.warns(UserWarning, match="freshly initialised"):
        fresh.load_own_variables({})
    other = AdversarialModel(image_base(), generator_attack())
    with pytest.raises(ValueError, match="do not match"):
        other.load_own_variables(store)
    # A plain attack holds no network: nothing saved, nothing warned.
    plain = AdversarialModel(image_base(), PGD(eps=0.1, steps=1))
    plain_store = {}
    plain.save_own_variables(plain_store)
    assert plain_store == {}
