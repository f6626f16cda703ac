"""PerturbationCVAE: terms in closed form, fit, beta schedule, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv.losses import BetaSchedule
from keras_adv.models import PerturbationCVAE
from keras_adv.models import cvae_mnist_conv
from keras_adv.models import cvae_mnist_fc
from keras_adv.testing import shift_cvae

RNG = np.random.default_rng(0)
X = RNG.uniform(0.2, 0.8, size=(32, 2, 2, 1)).astype("float32")
X_TILDE = np.clip(X + RNG.uniform(-0.1, 0.1, size=X.shape), 0, 1).astype(
    "float32"
)


def test_shift_cvae_terms_and_set_in_closed_form():
    cvae = shift_cvae((3,), scale=0.5)
    x = np.float32([[0.1, 0.2, 0.3]])
    x_tilde = np.float32([[0.4, 0.2, 0.3]])
    # Latent distance ||x~ - x|| / scale.
    assert float(cvae.latent_distance(x, x_tilde)[0]) == pytest.approx(0.6)
    u = np.float32([[1.0, -1.0, 2.0]])
    np.testing.assert_allclose(cvae.perturb(x, u), x + 0.5 * u, atol=1e-6)
    # KL(N(d, 1) || N(0, 1/4)) = 0.5 sum(4 + 4 d^2 - 1 + log 1/4).
    _, kl = cvae.compute_terms(x, x_tilde)
    d2 = 0.3**2
    expected = 0.5 * (3 * (4 - 1 + np.log(0.25)) + 4 * d2)
    assert float(kl[0]) == pytest.approx(expected, rel=1e-5)
    samples = np.asarray(cvae.sample(np.repeat(x, 2, 0), n=500, seed=1))
    assert samples.shape == (2, 500, 3)
    assert abs(samples.std(axis=1).mean() - 0.5) < 0.05


def test_fit_on_arrays_and_datasets_reduces_the_loss():
    cvae = cvae_mnist_fc(hidden=32, latent_dim=4, input_shape=(2, 2, 1), seed=0)
    cvae.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = cvae.fit(X, X_TILDE, epochs=15, batch_size=16, verbose=0)
    logs = history.history
    assert set(logs) == {"loss", "reconstruction_loss", "kl_loss", "beta"}
    assert logs["loss"][-1] < logs["loss"][0]
    ds = tf.data.Dataset.from_tensor_slices((X, X_TILDE)).batch(8)
    more = cvae.fit(ds, epochs=1, verbose=0).history
    assert more["loss"][0] < logs["loss"][0]
    evaluated = cvae.evaluate(X, X_TILDE, verbose=0, return_dict=True)
    assert evaluated["loss"] == pytest.approx(
        evaluated["reconstruction_loss"] + evaluated["kl_loss"], rel=1e-4
    )


def test_beta_schedule_follows_the_optimizer_steps_without_retracing():
    schedule = BetaSchedule([0, 4], [0.0, 1.0])
    cvae = cvae_mnist_fc(
        hidden=8, latent_dim=2, input_shape=(2, 2, 1), beta=schedule, seed=0
    )
    cvae.compile(optimizer="sgd")
    history = cvae.fit(X, X_TILDE, epochs=2, batch_size=16, verbose=0)
    # 2 steps per epoch: beta at steps 0, 1 then 2, 3 (epoch means).
    np.testing.assert_allclose(history.history["beta"], [0.125, 0.625])
    assert float(cvae.beta) == pytest.approx(0.75)
    config = cvae.get_config()
    assert config["beta"]["class_name"] == "BetaSchedule"


def test_fixed_beta_is_a_variable_changed_between_epochs():
    cvae = cvae_mnist_fc(hidden=8, latent_dim=2, input_shape=(2, 2, 1))
    cvae.compile(optimizer="sgd")
    cvae.fit(X, X_TILDE, epochs=1, batch_size=32, verbose=0)
    cvae.beta.assign(0.0)
    logs = cvae.fit(X, X_TILDE, epochs=1, batch_size=32, verbose=0).history
    assert logs["beta"] == [0.0]
    assert logs["loss"][0] == pytest.approx(
        logs["reconstruction_loss"][0], rel=1e-5
    )


def test_keras_round_trip_keeps_the_set(tmp_path):
    cvae = cvae_mnist_conv(channels=(2, 4), latent_channels=2, seed=0)
    cvae.compile(optimizer="adam")
    x = RNG.uniform(size=(4, 28, 28, 1)).astype("float32")
    cvae.fit(x, x, epochs=1, verbose=0)
    path = str(tmp_path / "cvae.keras")
    cvae.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, PerturbationCVAE)
    u = RNG.normal(size=(4, 7, 7, 2)).astype("float32")
    np.testing.assert_allclose(loaded.perturb(x, u), cvae.perturb(x, u), 1e-6)
    np.testing.assert_allclose(
        loaded.latent_distance(x, x), cvae.latent_distance(x, x), 1e-5
    )
    loaded.fit(x, x, epochs=1, verbose=0)  # the optimizer came back too


def test_paper_builders():
    fc = cvae_mnist_fc()
    assert fc.latent_shape == (784,)
    # Prior 784-784-(784, 784), recognition 1568-784-(784, 784), decoder
    # 1568-784-784, plus the beta variable.
    assert fc.count_params() == 6_152_833
    conv = cvae_mnist_conv()
    assert conv.latent_shape == (7, 7, 128)
    x = np.zeros((2, 28, 28, 1), "float32")
    out = np.asarray(conv.perturb(x, np.zeros((2, 7, 7, 128), "float32")))
    assert out.shape == (2, 28, 28, 1)
    assert out.min() >= 0.0 and out.max() <= 1.0
    decoder_inputs = [t.shape[1:] for t in conv.decoder.inputs]
    assert decoder_inputs == [(28, 28, 1), (7, 7, 128)]
    with pytest.raises(ValueError, match="input_shape"):
        cvae_mnist_conv(input_shape=(30, 30, 1))


def test_invalid_arguments_and_data():
    cvae = shift_cvae((2,))
    with pytest.raises(TypeError, match="prior"):
        PerturbationCVAE("prior", cvae.recognition, cvae.decoder)
    with pytest.raises(ValueError, match="reconstruction"):
        PerturbationCVAE(
            cvae.prior, cvae.recognition, cvae.decoder, reconstruction="l1"
        )
    with pytest.raises(ValueError, match="beta"):
        PerturbationCVAE(cvae.prior, cvae.recognition, cvae.decoder, beta=-1)
    cvae.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="x_tilde"):
        cvae.fit(np.zeros((4, 2), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="inputs"):
        cvae(np.zeros((4, 2), "float32"))
    assert keras_adv.models.PerturbationCVAE is PerturbationCVAE


def fc_cvae(reconstruction="bernoulli"):
    cvae = cvae_mnist_fc(
        hidden=8,
        latent_dim=2,
        input_shape=(2, 2, 1),
        reconstruction=reconstruction,
        seed=0,
    )
    cvae.compile(optimizer="sgd")
    return cvae


@pytest.mark.parametrize(
    "pair, name",
    [
        ((X, X_TILDE * 255), "`x_tilde`"),
        ((X * 255, X_TILDE * 255), "`x`"),
        ((X, np.where(X_TILDE > 0.5, np.nan, X_TILDE)), "`x_tilde`"),
    ],
)
def test_bernoulli_pairs_outside_zero_one_are_refused(pair, name):
    # Their binary cross-entropy was negative and fit trained on it.
    cvae = fc_cvae()
    before = cvae.get_weights()
    for run in (cvae.fit, cvae.evaluate):
        with pytest.raises(ValueError, match=name):
            run(*pair, verbose=0)
    with pytest.raises(ValueError, match=name):
        cvae.fit(X, X_TILDE, validation_data=pair, verbose=0)
    data = tf.data.Dataset.from_tensor_slices(pair).batch(16)
    with pytest.raises(tf.errors.InvalidArgumentError, match=name):
        cvae.fit(data, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=name):
        cvae.evaluate(data, verbose=0)
    for old, new in zip(before, cvae.get_weights()):
        np.testing.assert_array_equal(old, new)  # nothing trained


def test_gaussian_pairs_take_any_values():
    cvae = fc_cvae("gaussian")
    history = cvae.fit(X * 255, X_TILDE * 255, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_affine_warp_identity_shift_and_gradient():
    import tensorflow as tf

    from keras_adv.models._cvae_nets import AffineWarp

    images = np.zeros((2, 28, 28, 1), "float32")
    images[:, 10:18, 12:16] = 1.0
    warp = AffineWarp()
    identity = np.float32([[1, 0, 0, 0, 1, 0]] * 2)
    np.testing.assert_allclose(warp([images, identity]), images, atol=1e-5)
    # Sampling at x - 2 pixels moves the content 2 pixels right.
    shift = np.float32([[1, 0, -4 / 27, 0, 1, 0]] * 2)
    moved = np.asarray(warp([images, shift]))
    np.testing.assert_allclose(moved[:, :, 2:], images[:, :, :-2], atol=1e-5)
    theta = tf.Variable(identity)
    with tf.GradientTape() as tape:
        out = warp([images, theta])
        centre = tf.reduce_sum(out * np.arange(28.0)[None, None, :, None])
    grad = tape.gradient(centre, theta).numpy()
    assert np.all(np.isfinite(grad)) and grad[0, 2] > 0


def test_stn_builder_starts_at_the_identity_and_round_trips(tmp_path):
    from keras_adv.models import cvae_mnist_stn

    cvae = cvae_mnist_stn(latent_dim=4, transformers=2, seed=0)
    assert cvae.latent_shape == (4,)
    x = RNG.uniform(size=(3, 28, 28, 1)).astype("float32")
    u = RNG.normal(size=(3, 4)).astype("float32")
    out = np.asarray(cvae.perturb(x, u))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    cvae.compile(optimizer="adam")
    cvae.fit(x, x, epochs=1, verbose=0)
    path = str(tmp_path / "stn.keras")
    cvae.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.perturb(x, u), cvae.perturb(x, u), 1e-5)
