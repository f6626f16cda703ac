"""Free-m adversarial training: a numpy reference, degenerate cases, paths."""

import _linear_models
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.models import AdversarialModel
from keras_adv.testing import assert_config_round_trip
from keras_adv.training import Free

FEATURES, CLASSES, BATCH = 5, 3, 8
LR = 0.5


def linear(seed=0):
    return _linear_models.linear(FEATURES, CLASSES, seed)


def compiled(model):
    return _linear_models.compiled(model, LR)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    x = rng.uniform(0.2, 0.8, size=(3 * BATCH, FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, size=3 * BATCH)
    return x, y


def _reference(w, b, x, y, eps, replays, carry, step_factor=1.0):
    """Free-m with SGD on softmax regression, written out in numpy.

    Returns the final weights and the per-replay losses.
    """
    w, b = w.astype("float64"), b.astype("float64")
    delta = np.zeros((BATCH, FEATURES))
    losses = []
    for start in range(0, len(x), BATCH):
        xb, yb = x[start : start + BATCH], y[start : start + BATCH]
        if not carry:
            delta = np.zeros_like(xb)
        for _ in range(replays):
            xa = np.clip(xb + delta, 0.0, 1.0)
            logits = xa @ w + b
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            losses.append(-np.mean(np.log(p[np.arange(len(yb)), yb])))
            p[np.arange(len(yb)), yb] -= 1.0
            p /= len(yb)
            grad_w, grad_b, grad_x = xa.T @ p, p.sum(0), p @ w.T
            w, b = w - LR * grad_w, b - LR * grad_b
            delta = np.clip(
                delta + step_factor * eps * np.sign(grad_x), -eps, eps
            )
            delta = np.clip(xb + delta, 0.0, 1.0) - xb
    return w, b, losses


@pytest.mark.parametrize("carry", [True, False], ids=["carry", "no_carry"])
@pytest.mark.parametrize("path", ["callback", "model"])
def test_free_matches_numpy_reference(data, carry, path):
    x, y = data
    eps, replays = 0.1, 3
    base = linear()
    w0, b0 = (v.copy() for v in base.get_weights())
    objective = Free(PGD(eps=eps), replays=replays, carry=carry)
    if path == "callback":
        model = compiled(base)
        history = model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[AdversarialTraining(objective=objective)],
        )
    else:
        model = compiled(AdversarialModel(base, objective=objective))
        history = model.fit(
            x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0
        )
    w, b, losses = _reference(w0, b0, x, y, eps, replays, carry)
    got_w, got_b = base.get_weights()
    np.testing.assert_allclose(got_w, w, atol=2e-5)
    np.testing.assert_allclose(got_b, b, atol=2e-5)
    # The logged loss is the mean over every replay of every batch.
    assert history.history["loss"][0] == pytest.approx(
        np.mean(losses), abs=1e-5
    )
    # Trained on x_adv alone: `loss` is the adversarial loss (no adv_loss).
    assert set(history.history) == {"loss", "adv_accuracy"}


def test_carry_changes_the_result(data):
    # The reference itself distinguishes the two: the test above is not
    # vacuous about carrying.
    x, y = data
    w0, b0 = linear().get_weights()
    w1, _, _ = _reference(w0, b0, x, y, 0.1, 3, carry=True)
    w2, _, _ = _reference(w0, b0, x, y, 0.1, 3, carry=False)
    assert np.abs(w1 - w2).max() > 1e-4


def test_eps_zero_one_replay_is_plain_fit(data):
    x, y = data
    plain = compiled(linear())
    plain.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False)
    free = compiled(linear())
    free.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=[
            AdversarialTraining(objective=Free(PGD(eps=0.0), replays=1))
        ],
    )
    for a, b in zip(plain.get_weights(), free.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_eps_zero_equals_plain_fit_on_replayed_batches(data):
    x, y = data
    replays = 3
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    repeated = batches.flat_map(
        lambda xb, yb: tf.data.Dataset.from_tensors((xb, yb)).repeat(replays)
    ).apply(tf.data.experimental.assert_cardinality(3 * replays))
    plain = compiled(linear())
    plain.fit(repeated, epochs=1, verbose=0)
    base = linear()
    free = compiled(
        AdversarialModel(base, objective=Free(PGD(eps=0.0), replays=replays))
    )
    free.fit(batches, epochs=1, verbose=0)
    for a, b in zip(plain.get_weights(), base.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert int(free.optimizer.iterations) == replays * 3


def test_trained_model_saves_and_loads(data, tmp_path):
    x, y = data
    model = compiled(linear())
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=1,
        verbose=0,
        callbacks=[
            AdversarialTraining(PGD(eps=0.1), objective="free", replays=2)
        ],
    )
    path = str(tmp_path / "free.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    adv = compiled(AdversarialModel(linear(), PGD(eps=0.1), "free", replays=2))
    adv.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    adv_path = str(tmp_path / "adv.keras")
    adv.save(adv_path)
    restored = keras.saving.load_model(adv_path, safe_mode=True)
    assert isinstance(restored.objective, Free)
    assert restored.objective.replays == 2


def test_config_and_errors():
    objective = Free(PGD(eps=0.3), replays=8, step_factor=0.5, carry=False)
    restored = assert_config_round_trip(objective)
    assert restored.get_config() == objective.get_config()
    with pytest.raises(ValueError, match="replays"):
        Free(PGD(), replays=0)
    with pytest.raises(ValueError, match="step_factor"):
        Free(PGD(), step_factor=-1.0)
    with pytest.raises((TypeError, ValueError), match="carry"):
        Free(PGD(), carry="yes")
