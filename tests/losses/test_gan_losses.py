"""Tests of the GAN losses: closed forms, gradients, stability."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv  # noqa: F401  (registers the classes)
from keras_adv import losses
from keras_adv.losses import _gan as gan_losses
from keras_adv.testing import assert_config_round_trip


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def _lse(v):
    return v.max() + np.log(np.sum(np.exp(v - v.max())))


def _grads(fn, real, fake):
    real = tf.constant(real, tf.float32)
    fake = tf.constant(fake, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([real, fake])
        value = fn(real, fake)
    g_real, g_fake = tape.gradient(value, [real, fake])
    return float(value), np.concatenate([g_real.numpy(), g_fake.numpy()])


REAL = np.array([1.5, -0.5, 2.0], "float64")  # N = 3
FAKE = np.array([0.25, -1.0, 3.0, 0.0, -2.0], "float64")  # M = 5


def test_softmax_gan_closed_form_values_unequal_batches():
    logits = np.concatenate([REAL, FAKE])
    expected_d = -REAL.mean() + _lse(logits)
    expected_g = -logits.mean() + _lse(logits)
    d = gan_losses.softmax_gan_discriminator_loss(REAL, FAKE)
    g = gan_losses.softmax_gan_generator_loss(REAL, FAKE)
    np.testing.assert_allclose(float(d), expected_d, rtol=1e-6)
    np.testing.assert_allclose(float(g), expected_g, rtol=1e-6)


def test_softmax_gan_equal_logits_give_log_batch_size():
    # Uniform softmax over N + M = 7: D loss = log 7, G loss = log 7.
    real, fake = np.zeros(3), np.full(4, 2.0)
    np.testing.assert_allclose(
        float(gan_losses.softmax_gan_discriminator_loss(real, real)),
        np.log(6.0),
        rtol=1e-6,
    )
    # G's target is the uniform distribution: with equal logits L_G is its
    # minimum, log(N + M), whatever N and M.
    np.testing.assert_allclose(
        float(gan_losses.softmax_gan_generator_loss(fake[:3], fake)),
        np.log(7.0),
        rtol=1e-6,
    )
    # Real and fake counts enter separately: (N, M) = (3, 4) differs from
    # the symmetric split.
    d = float(gan_losses.softmax_gan_discriminator_loss(real, fake))
    expected = -0.0 + _lse(np.concatenate([real, fake]))
    np.testing.assert_allclose(d, expected, rtol=1e-6)


def test_softmax_gan_gradients_are_softmax_minus_target():
    n, m = len(REAL), len(FAKE)
    p = _softmax(np.concatenate([REAL, FAKE]))
    target_d = np.concatenate([np.full(n, 1.0 / n), np.zeros(m)])
    target_g = np.full(n + m, 1.0 / (n + m))
    _, grad_d = _grads(gan_losses.softmax_gan_discriminator_loss, REAL, FAKE)
    _, grad_g = _grads(gan_losses.softmax_gan_generator_loss, REAL, FAKE)
    np.testing.assert_allclose(grad_d, p - target_d, atol=1e-6)
    np.testing.assert_allclose(grad_g, p - target_g, atol=1e-6)


def test_softmax_gan_is_stable_for_huge_logits():
    real = np.array([1e4, 1e4 - 1.0])
    fake = np.array([1e4 - 3.0, -1e4, 1e4 + 0.5])
    logits = np.concatenate([real, fake])
    shifted = logits - 1e4  # losses are shift invariant
    expected_d = -(real - 1e4).mean() + _lse(shifted)
    expected_g = -shifted.mean() + _lse(shifted)
    d, grad_d = _grads(gan_losses.softmax_gan_discriminator_loss, real, fake)
    g, grad_g = _grads(gan_losses.softmax_gan_generator_loss, real, fake)
    assert np.isfinite([d, g]).all()
    np.testing.assert_allclose(d, expected_d, atol=1e-4)
    np.testing.assert_allclose(g, expected_g, atol=2e-3)
    p = _softmax(logits)
    np.testing.assert_allclose(
        grad_d, p - np.array([0.5, 0.5, 0, 0, 0]), atol=1e-6
    )
    np.testing.assert_allclose(grad_g, p - 0.2, atol=1e-6)


def test_softmax_gan_accepts_column_logits_and_float16():
    real = np.array([[1.0], [2.0]], "float16")
    fake = np.array([[0.0]], "float16")
    value = gan_losses.softmax_gan_discriminator_loss(real, fake)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    expected = -1.5 + _lse(np.array([1.0, 2.0, 0.0]))
    np.testing.assert_allclose(float(value), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "name, d_expected, g_expected",
    [
        # real = [1, -1], fake = [0, 2]
        (
            "non_saturating",
            0.5 * (np.log1p(np.exp(-1.0)) + np.log1p(np.exp(1.0)))
            + 0.5 * (np.log(2.0) + np.log1p(np.exp(2.0))),
            0.5 * (np.log(2.0) + np.log1p(np.exp(-2.0))),
        ),
        ("least_squares", 0.5 * 2.0 + 0.5 * 2.0, 0.5 * 1.0),
        ("hinge", 1.0 + 2.0, -1.0),
    ],
)
def test_comparison_losses_closed_form(name, d_expected, g_expected):
    loss = gan_losses.get_gan_loss(name)
    real, fake = np.array([1.0, -1.0]), np.array([0.0, 2.0])
    np.testing.assert_allclose(
        float(loss.discriminator_loss(real, fake)), d_expected, rtol=1e-6
    )
    np.testing.assert_allclose(
        float(loss.generator_loss(None, fake)), g_expected, rtol=1e-6
    )
    assert loss.generator_uses_real_logits is False


def test_non_saturating_gradient_is_sigmoid_minus_label():
    real, fake = np.array([0.3, -2.0]), np.array([1.0])
    _, grad = _grads(gan_losses.non_saturating_discriminator_loss, real, fake)
    sig = 1.0 / (1.0 + np.exp(-np.concatenate([real, fake])))
    expected = np.concatenate([(sig[:2] - 1.0) / 2, sig[2:]])
    np.testing.assert_allclose(grad, expected, atol=1e-6)


@pytest.mark.parametrize(
    "cls",
    [
        losses.SoftmaxGANLoss,
        losses.NonSaturatingGANLoss,
        losses.LeastSquaresGANLoss,
        losses.HingeGANLoss,
    ],
)
def test_loss_objects_round_trip(cls):
    restored = assert_config_round_trip(cls())
    assert (
        gan_losses.get_gan_loss(
            keras.saving.serialize_keras_object(cls())
        ).__class__
        is cls
    )
    assert isinstance(restored, losses.GANLoss)


def test_softmax_loss_object_matches_functions_and_needs_real():
    loss = gan_losses.get_gan_loss("softmax")
    assert loss.generator_uses_real_logits is True
    np.testing.assert_allclose(
        float(loss.generator_loss(REAL, FAKE)),
        float(gan_losses.softmax_gan_generator_loss(REAL, FAKE)),
    )


def test_invalid_identifiers_raise():
    with pytest.raises(ValueError, match="argument `loss`"):
        gan_losses.get_gan_loss("wasserstein")
    with pytest.raises(ValueError, match="real_logits"):
        gan_losses.softmax_gan_generator_loss(None, FAKE)
