"""AdversarialTraining under tf.distribute.MirroredStrategy (2 CPU devices).

Logical devices must be configured before TensorFlow initialises, so the
run happens in a subprocess.
"""

import _two_cpus
import numpy as np
import pytest

SCRIPT = r"""
import json
import tensorflow as tf
import keras
import numpy as np

from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining

rng = np.random.default_rng(0)
x = rng.uniform(size=(128, 6)).astype("float32")
y = rng.integers(0, 3, 128)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = {"replicas": strategy.num_replicas_in_sync}
for objective in ["adversarial", "fgsm-rs", "trades", "vat", "free"]:
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dense(3),
            ]
        )
        model.compile(
            "sgd",
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    history = model.fit(
        x,
        y,
        batch_size=32,
        epochs=2,
        verbose=0,
        callbacks=[AdversarialTraining(PGD(eps=0.1, steps=2), objective)],
    )
    result = dict(history.history)
    result["wrapped"] = any(
        name in vars(model)
        for name in ("train_step", "compute_loss", "compute_metrics")
    )
    out[objective] = result


def free_model():
    init = keras.initializers.GlorotUniform(seed=1)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(3, kernel_initializer=init)]
    )
    model.compile(
        keras.optimizers.SGD(0.5),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def free_fit(model):
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[
            AdversarialTraining(
                PGD(eps=0.1), "free", replays=3, carry=False
            )
        ],
    )
    return model.get_weights()


with strategy.scope():
    replicated = free_model()
weights = free_fit(replicated)
single = free_fit(free_model())
out["free_max_diff"] = max(
    float(np.abs(a - b).max()) for a, b in zip(weights, single)
)
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def results():
    return _two_cpus.run(SCRIPT)


def test_two_replicas(results):
    assert results["replicas"] == 2


@pytest.mark.parametrize(
    "objective", ["adversarial", "fgsm-rs", "trades", "vat", "free"]
)
def test_objectives_train_and_unwrap(results, objective):
    logs = results[objective]
    keys = ["loss", "adv_accuracy"]
    if objective in ("trades", "vat"):  # trained on clean batches
        keys += ["accuracy", "adv_loss"]
    for key in keys:
        assert np.all(np.isfinite(logs[key])), key
    assert not logs["wrapped"]


@pytest.mark.parametrize(
    "objective", ["adversarial", "fgsm-rs", "trades", "vat", "free"]
)
def test_adv_accuracy_is_an_exact_epoch_mean(results, objective):
    # 128 samples over 2 replicas: an exact mean is a multiple of 1/128.
    counts = np.asarray(results[objective]["adv_accuracy"]) * 128
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-4)


@pytest.mark.parametrize("objective", ["adversarial", "fgsm-rs", "free"])
def test_metrics_on_x_adv_are_logged_once(results, objective):
    # Trained on x_adv alone: Keras' loss and accuracy measured x_adv; the
    # accuracy is logged once, as adv_accuracy, and `loss` is not repeated.
    logs = results[objective]
    assert "accuracy" not in logs and "adv_loss" not in logs


def test_free_on_two_replicas_equals_one_device(results):
    # Under a strategy each minibatch starts from zero (no carry); the
    # replicated Free-m step must then equal the single-device one.
    assert results["free_max_diff"] < 1e-5
