"""Tests of the TRADES / VAT terms and their inner maximisations."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import PGD
from keras_adv.losses import trades_kl
from keras_adv.losses import vat_lds
from keras_adv.losses._robust import kl_divergence_from_logits
from keras_adv.losses._robust import trades_perturbation
from keras_adv.losses._robust import virtual_adversarial_perturbation
from keras_adv.testing import linear_classifier
from keras_adv.threat_models import L2Ball
from keras_adv.threat_models import LinfBall


def test_kl_closed_form():
    p = np.log(np.array([[0.5, 0.5], [0.9, 0.1]], "float32"))
    q = np.log(np.array([[0.25, 0.75], [0.9, 0.1]], "float32"))
    expected = [0.5 * np.log(2.0) + 0.5 * np.log(0.5 / 0.75), 0.0]
    np.testing.assert_allclose(
        np.asarray(kl_divergence_from_logits(p, q)), expected, atol=1e-6
    )


def test_kl_shift_invariant_and_stable():
    logits = np.array([[1000.0, 0.0, -1000.0]], "float32")
    kl = np.asarray(kl_divergence_from_logits(logits, logits + 5.0))
    np.testing.assert_allclose(kl, [0.0], atol=1e-6)
    kl = np.asarray(kl_divergence_from_logits(logits, logits[:, ::-1]))
    assert np.isfinite(kl).all() and kl[0] > 100.0


def test_trades_kl_gradients_flow_through_both_sides():
    clean = tf.Variable([[1.0, 0.0]])
    adv = tf.Variable([[0.0, 1.0]])
    with tf.GradientTape(persistent=True) as tape:
        value = tf.reduce_sum(trades_kl(clean, adv))
        lds = tf.reduce_sum(vat_lds(clean, adv))
    assert float(tf.reduce_sum(tf.abs(tape.gradient(value, clean)))) > 0
    assert float(tf.reduce_sum(tf.abs(tape.gradient(value, adv)))) > 0
    # VAT treats the clean distribution as a constant.
    assert tape.gradient(lds, clean) is None
    np.testing.assert_allclose(float(value), float(lds), rtol=1e-6)


@pytest.fixture(scope="module")
def linear_problem():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 2)).astype("float32")
    model = linear_classifier(w)
    x = rng.uniform(0.3, 0.7, size=(16, 8)).astype("float32")
    return model, w, x


@pytest.mark.parametrize("ball", [LinfBall, L2Ball])
def test_trades_perturbation_in_ball_and_increases_kl(linear_problem, ball):
    model, _, x = linear_problem
    tm = ball(eps=0.1)
    logits_fn = PGD().model_logits(model)
    x = tf.constant(x)
    clean = logits_fn(x)
    x_adv = trades_perturbation(
        logits_fn, x, clean, tm, 0.1, 5, 0.05, tf.constant([1, 2])
    )
    assert bool(tf.reduce_all(tm.contains(x, x_adv)))
    kl_adv = np.asarray(kl_divergence_from_logits(clean, logits_fn(x_adv)))
    noise = tm.random_start(x, seed=tf.constant([3, 4]))
    kl_rand = np.asarray(kl_divergence_from_logits(clean, logits_fn(noise)))
    assert kl_adv.mean() > 2.0 * kl_rand.mean()


def test_vat_direction_is_the_dominant_eigenvector(linear_problem):
    # For a 2-class linear model the input Hessian of the KL is rank one,
    # along w1 - w0: the power iteration finds that direction.
    model, w, x = linear_problem
    tm = L2Ball(eps=0.05, value_range=(0.0, 1.0))
    logits_fn = PGD().model_logits(model)
    x = tf.constant(x)
    x_adv = virtual_adversarial_perturbation(
        logits_fn, x, logits_fn(x), tm, 0.05, xi=1e-3, seed=tf.constant([5, 6])
    )
    r = np.asarray(x_adv) - np.asarray(x)
    u = (w[:, 1] - w[:, 0]) / np.linalg.norm(w[:, 1] - w[:, 0])
    cosine = np.abs(r @ u) / np.linalg.norm(r, axis=1)
    np.testing.assert_allclose(cosine, 1.0, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), 0.05, rtol=1e-4)


def test_vat_linf_uses_sign(linear_problem):
    model, _, x = linear_problem
    tm = LinfBall(eps=0.05)
    logits_fn = PGD().model_logits(model)
    x = tf.constant(x)
    x_adv = virtual_adversarial_perturbation(
        logits_fn, x, logits_fn(x), tm, 0.05, xi=1e-3, seed=tf.constant([5, 6])
    )
    r = np.abs(np.asarray(x_adv) - np.asarray(x))
    np.testing.assert_allclose(r, 0.05, atol=1e-6)
