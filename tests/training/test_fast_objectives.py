"""N-FGSM and GradAlign: closed forms on linear models, degenerate cases."""

import _linear_models
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.models import AdversarialModel
from keras_adv.testing import assert_config_round_trip
from keras_adv.training import NFGSM
from keras_adv.training import GradAlign

FEATURES, CLASSES = 6, 3


def linear(seed=0):
    return _linear_models.linear(FEATURES, CLASSES, seed)


def compiled(model):
    return _linear_models.compiled(model, 0.1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.2, 0.8, size=(64, FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, size=64)
    return x, y


def test_nfgsm_step_on_a_linear_model(data):
    # For a linear model the CE gradient sign at x_noise is computable:
    # x_adv = clip(x_noise + eps * sign(w_pred_mix)), no projection.
    x, y = data
    model = linear()
    objective = NFGSM(PGD(eps=0.1, value_range=(-5.0, 5.0)))
    seed = tf.constant([4, 2])
    x_adv = np.asarray(objective.adversarial_examples(model, x, y, 0.1, seed))
    delta = x_adv - x
    # Noise up to 2 eps plus a step of eps: |delta| <= 3 eps, and it
    # exceeds eps somewhere (no projection back onto the ball).
    assert np.abs(delta).max() <= 0.3 + 1e-6
    assert np.abs(delta).max() > 0.1 + 1e-3
    # The step part: x_adv - x_noise = eps * sign(grad at x_noise).
    tm = objective.threat_model
    x_noise = np.asarray(tm.random_start(x, seed=seed, eps=0.2))
    w, b = model.get_weights()
    logits = x_noise @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    grad = p @ w.T
    np.testing.assert_allclose(x_adv - x_noise, 0.1 * np.sign(grad), atol=1e-5)


def test_nfgsm_clip_projects_onto_the_ball(data):
    x, y = data
    objective = NFGSM(PGD(eps=0.1), clip=1.0)
    x_adv = np.asarray(
        objective.adversarial_examples(linear(), x, y, 0.1, tf.constant([1, 1]))
    )
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6


def _grad_align_term(model, x, y, x_noise, lam):
    w, b = model.get_weights()

    def grad(points):
        logits = points @ w + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(y)), y] -= 1.0
        return p @ w.T

    g1, g2 = grad(x), grad(x_noise)
    cos = (g1 * g2).sum(1) / (
        np.linalg.norm(g1, axis=1) * np.linalg.norm(g2, axis=1)
    )
    return lam * np.mean(1.0 - cos)


def test_grad_align_term_matches_closed_form(data):
    x, y = data
    model = linear()
    objective = GradAlign(PGD(eps=0.2), grad_align_lambda=2.0)
    seed = tf.constant([7, 3])
    term, _ = objective.extra_loss(
        model, x, y, None, None, None, eps=0.2, seed=seed
    )
    tm = objective.threat_model
    x_noise = np.asarray(
        tm.random_start(x, seed=keras_adv._random.fold_seed(seed, 1), eps=0.2)
    )
    expected = _grad_align_term(model, x, y, x_noise, 2.0)
    assert float(term) == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert expected > 1e-4  # the test is not vacuous


@pytest.mark.parametrize(
    "objective",
    [
        lambda: NFGSM(PGD(eps=0.0)),
        lambda: GradAlign(PGD(eps=0.0), grad_align_lambda=0.0),
        lambda: NFGSM(PGD(eps=0.3), adv_weight=0.0),
    ],
    ids=["nfgsm_eps0", "gradalign_eps0_l0", "nfgsm_w0"],
)
@pytest.mark.parametrize("path", ["callback", "model"])
def test_degenerate_settings_equal_plain_fit(data, objective, path):
    x, y = data
    plain = compiled(linear())
    plain.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    if path == "callback":
        adv = compiled(linear())
        adv.fit(
            x,
            y,
            batch_size=16,
            epochs=2,
            verbose=0,
            shuffle=False,
            callbacks=[AdversarialTraining(objective=objective())],
        )
        weights = adv.get_weights()
    else:
        base = linear()
        adv = compiled(AdversarialModel(base, objective=objective()))
        adv.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        weights = base.get_weights()
    for a, b in zip(plain.get_weights(), weights):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("shorthand", ["n_fgsm", "grad_align"])
def test_shorthands_train_and_save(data, shorthand, tmp_path):
    x, y = data
    base = linear()
    model = compiled(AdversarialModel(base, PGD(eps=0.1), shorthand))
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    assert type(loaded.objective) is type(model.objective)


def test_configs_and_errors():
    for objective in (
        NFGSM(PGD(eps=0.3), noise_multiplier=1.5, clip=2.0),
        GradAlign(PGD(eps=0.3), grad_align_lambda=0.5),
    ):
        restored = assert_config_round_trip(objective)
        assert restored.get_config() == objective.get_config()
    with pytest.raises(ValueError, match="noise_multiplier"):
        NFGSM(PGD(), noise_multiplier=-1.0)
    with pytest.raises(ValueError, match="clip"):
        NFGSM(PGD(), clip=0.0)
    with pytest.raises(ValueError, match="grad_align_lambda"):
        GradAlign(PGD(), grad_align_lambda=-0.1)
