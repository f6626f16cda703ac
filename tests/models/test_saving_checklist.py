"""Serialisation, `.keras` saving and callback checklists (`TestCase`).

AdversarialModel, the GAN models, AdversarialTraining and OverfittingGuard
go through `run_serialization_test`, `run_model_saving_test` and
`run_callback_test` on tiny models trained for one epoch.
"""

import keras
import numpy as np
import pytest

from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.callbacks import OverfittingGuard
from keras_adv.models import GAN
from keras_adv.models import AdversarialModel
from keras_adv.models import SoftmaxGAN
from keras_adv.testing import TestCase
from keras_adv.training import TRADES

FEATURES = 6
CLASSES = 3
LATENT = 4

OBJECTIVES = {
    "adversarial": {},
    "fgsm-rs": {"adv_weight": 0.5},
    "trades": {"beta": 2.0},
    "vat": {"alpha": 1.0},
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, FEATURES)).astype("float32")
    w = rng.normal(size=(FEATURES, CLASSES))
    y = np.argmax((x - 0.5) @ w, axis=1).astype("int64")
    return x, y


@pytest.fixture
def case():
    return TestCase()


def classifier(seed=0):
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
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def attack():
    return PGD(eps=0.1, steps=2, seed=0)


# ------------------------------------------------------- AdversarialModel
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_adversarial_model(case, data, objective):
    x, y = data
    model = AdversarialModel(
        classifier(), attack(), objective, **OBJECTIVES[objective]
    )
    case.run_serialization_test(model)
    compile_(model).fit(x, y, batch_size=32, epochs=1, verbose=0)
    loaded = case.run_model_saving_test(model, x)
    assert type(loaded.objective) is type(model.objective)
    assert loaded.objective.get_config() == model.objective.get_config()
    # The optimizer state comes back too: training resumes where it was.
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


def test_adversarial_model_with_an_objective_instance(case):
    model = AdversarialModel(classifier(), objective=TRADES(attack(), beta=3))
    revived = case.run_serialization_test(model)
    assert revived.objective.beta == 3.0


# ------------------------------------------------------------------ GANs
def generator():
    init = keras.initializers.GlorotUniform(seed=0)
    return keras.Sequential(
        [
            keras.Input((LATENT,)),
            keras.layers.Dense(8, activation="relu", kernel_initializer=init),
            keras.layers.Dense(FEATURES, kernel_initializer=init),
        ]
    )


def discriminator():
    init = keras.initializers.GlorotUniform(seed=1)
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8, activation="relu", kernel_initializer=init),
            keras.layers.Dense(1, kernel_initializer=init),
        ]
    )


@pytest.mark.parametrize(
    "cls,loss", [(GAN, "hinge"), (SoftmaxGAN, None)], ids=["GAN", "SoftmaxGAN"]
)
def test_gan_models(case, data, cls, loss):
    x, _ = data
    gan = cls(generator(), discriminator(), LATENT, d_steps=2, seed=3)
    case.run_serialization_test(gan)
    kwargs = {} if loss is None else {"loss": loss}
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-3),
        g_optimizer=keras.optimizers.Adam(1e-3),
        **kwargs,
    )
    gan.fit(x, batch_size=32, epochs=1, verbose=0)
    z = np.random.default_rng(1).normal(size=(8, LATENT)).astype("float32")
    loaded = case.run_model_saving_test(gan, z)
    assert type(loaded.gan_loss) is type(gan.gan_loss)
    # The latent sampler's state is saved: both draw the same next batch.
    np.testing.assert_array_equal(
        np.asarray(loaded.sample_latent(4)), np.asarray(gan.sample_latent(4))
    )


# ------------------------------------------------------------- callbacks
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_adversarial_training_callback(case, data, objective):
    def callback():
        return AdversarialTraining(attack(), objective, **OBJECTIVES[objective])

    case.run_serialization_test(callback())
    _, cb = case.run_callback_test(
        callback, lambda: compile_(classifier()), data
    )
    assert not cb.active


def test_adversarial_training_callback_with_start_epoch(case, data):
    # The step is installed mid-fit (epoch 1) and removed at the end.
    case.run_callback_test(
        lambda: AdversarialTraining(attack(), start_epoch=1),
        lambda: compile_(classifier()),
        data,
        epochs=2,
    )


def test_overfitting_guard_callback(case, data):
    x, y = data
    case.run_callback_test(
        lambda: OverfittingGuard((x[:32], y[:32]), attack(), drop=0.01),
        lambda: compile_(classifier()),
        data,
        epochs=2,
    )


def test_overfitting_guard_config_round_trip(case, data):
    x, y = data
    case.run_serialization_test(OverfittingGuard((x, y), attack(), drop=0.3))
