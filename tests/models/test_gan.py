"""Tests of the GAN base, SoftmaxGAN and the DCGAN builders."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv.losses import NonSaturatingGANLoss
from keras_adv.losses import SoftmaxGANLoss
from keras_adv.models import GAN
from keras_adv.models import SoftmaxGAN
from keras_adv.models import dcgan_discriminator
from keras_adv.models import dcgan_generator
from keras_adv.testing import run_model_saving_test

LATENT = 4
FEATURES = 6


def mlp_generator(seed=0):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((LATENT,)),
            keras.layers.Dense(8, activation="relu", kernel_initializer=init),
            keras.layers.Dense(FEATURES, kernel_initializer=init),
        ],
        name="generator",
    )


def mlp_discriminator(seed=1):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8, activation="relu", kernel_initializer=init),
            keras.layers.Dense(1, kernel_initializer=init),
        ],
        name="discriminator",
    )


def data(n=64):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, FEATURES)) + 3.0).astype("float32")


def make_gan(cls=SoftmaxGAN, d_steps=1, **compile_kwargs):
    gan = cls(mlp_generator(), mlp_discriminator(), LATENT, d_steps, seed=3)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-2),
        g_optimizer=keras.optimizers.Adam(1e-2),
        **compile_kwargs,
    )
    return gan


@pytest.fixture(scope="module")
def trained():
    """One SoftmaxGAN fitted for 2 epochs of 4 steps (shared, read-only)."""
    gan = make_gan()
    g0 = [w.copy() for w in gan.generator.get_weights()]
    d0 = [w.copy() for w in gan.discriminator.get_weights()]
    history = gan.fit(data(), batch_size=16, epochs=2, verbose=0)
    return gan, g0, d0, history


def _json(config):
    return json.loads(json.dumps(config))


def _changed(before, after):
    return all(not np.allclose(a, b) for a, b in zip(before, after))


def test_fit_updates_both_networks_and_trackers(trained):
    gan, g0, d0, history = trained
    assert _changed(g0, gan.generator.get_weights())
    assert _changed(d0, gan.discriminator.get_weights())
    assert set(history.history) == {"d_loss", "g_loss"}
    assert [m.name for m in gan.metrics] == ["d_loss", "g_loss"]
    assert np.isfinite(history.history["d_loss"]).all()
    assert int(gan.d_optimizer.iterations) == 8
    assert int(gan.g_optimizer.iterations) == 8
    assert gan.optimizer is None  # no unused third optimizer
    # The D loss starts near its value for a D that cannot tell:
    # log(N + M) = log 32.
    assert abs(history.history["d_loss"][0] - np.log(32.0)) < 1.0


def test_d_steps_runs_extra_discriminator_updates():
    gan = make_gan(cls=GAN, d_steps=3, loss="hinge")
    gan.fit(data(32), batch_size=16, epochs=1, verbose=0)
    assert int(gan.d_optimizer.iterations) == 6
    assert int(gan.g_optimizer.iterations) == 2


def test_generate_and_call(trained):
    gan = trained[0]
    samples = gan.generate(5)
    assert samples.shape == (5, FEATURES)
    z = np.random.default_rng(1).normal(size=(300, LATENT)).astype("float32")
    np.testing.assert_allclose(
        gan.generate(latent=z, batch_size=128),
        gan.generator(z, training=False).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(gan(z[:3]).numpy(), gan.generate(latent=z[:3]))
    with pytest.raises(ValueError, match="argument `n`"):
        gan.generate()


def test_seed_makes_latent_sampling_repeatable():
    a = GAN(mlp_generator(), mlp_discriminator(), LATENT, seed=5)
    b = GAN(mlp_generator(), mlp_discriminator(), LATENT, seed=5)
    np.testing.assert_array_equal(a.sample_latent(3), b.sample_latent(3))
    assert not np.allclose(a.sample_latent(3), a.sample_latent(3))


def test_keras_round_trip_restores_weights_and_optimizers(trained):
    gan = trained[0]
    z = np.random.default_rng(3).normal(size=(5, LATENT)).astype("float32")
    loaded = run_model_saving_test(gan, z)  # same generated samples
    assert type(loaded) is SoftmaxGAN
    assert isinstance(loaded.gan_loss, SoftmaxGANLoss)
    assert _json(loaded.get_config()) == _json(gan.get_config())
    for a, b in zip(gan.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    for opt, new in (
        (gan.d_optimizer, loaded.d_optimizer),
        (gan.g_optimizer, loaded.g_optimizer),
    ):
        assert new.get_config() == opt.get_config()
        assert len(new.variables) == len(opt.variables) > 1
        for a, b in zip(opt.variables, new.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Training resumes: iterations continue from the saved value and the
    # Adam moments are reused (the first resumed step equals the next step
    # of the original model given the same latents, checked via iterations).
    loaded.fit(data(), batch_size=16, epochs=1, verbose=0)
    assert int(loaded.d_optimizer.iterations) == 12
    assert int(loaded.g_optimizer.iterations) == 12


def test_resumed_step_equals_uninterrupted_step(tmp_path):
    """Save mid-training, load, train: same weights as never stopping."""
    x = data(16)
    reference = make_gan(cls=GAN, loss="non_saturating")
    reference.fit(x, batch_size=16, epochs=1, verbose=0)
    path = os.path.join(tmp_path, "gan.keras")
    reference.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.gan_loss, NonSaturatingGANLoss)
    reference.fit(x, batch_size=16, epochs=1, verbose=0)
    loaded.fit(x, batch_size=16, epochs=1, verbose=0)
    for a, b in zip(reference.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("interrupted")


def test_backup_and_restore_resumes(tmp_path):
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    gan = make_gan()
    x = data(32)
    with pytest.raises(RuntimeError, match="interrupted"):
        gan.fit(
            x,
            batch_size=16,
            epochs=4,
            verbose=0,
            callbacks=[backup, _Interrupt()],
        )
    assert int(gan.d_optimizer.iterations) == 4  # 2 epochs x 2 steps
    # A fresh process would rebuild the model; the backup restores the
    # weights, both optimizers and the epoch counter.
    fresh = make_gan()
    history = fresh.fit(
        x, batch_size=16, epochs=4, verbose=0, callbacks=[backup]
    )
    # The backup ran before the interruption at the end of epoch 1.
    assert history.epoch == [2, 3]
    assert int(fresh.d_optimizer.iterations) == 4 + 2 * 2
    assert int(fresh.g_optimizer.iterations) == 4 + 2 * 2


def test_compile_config_and_losses_by_name():
    gan = make_gan(cls=GAN, loss="least_squares")
    config = gan.get_compile_config()
    json.dumps(config)
    assert config["loss"]["class_name"] == "LeastSquaresGANLoss"
    lr = config["d_optimizer"]["config"]["learning_rate"]
    assert lr == pytest.approx(1e-2)


def test_mixed_precision_wraps_optimizers_and_trains():
    keras.mixed_precision.set_global_policy("mixed_float16")
    gan = make_gan()
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    history = gan.fit(data(32), batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["g_loss"]).all()
    assert int(gan.g_optimizer.iterations) == 2


def _spy(base):
    class Spy(base):
        seen = []

        def generator_loss(self, real_logits, fake_logits):
            self.seen.append(real_logits)
            return super().generator_loss(real_logits, fake_logits)

    return Spy


def test_generator_step_passes_real_logits_only_when_needed():
    softmax = _spy(SoftmaxGAN)(mlp_generator(), mlp_discriminator(), LATENT)
    softmax.compile()
    softmax.train_step((tf.constant(data(8)),))
    assert softmax.seen[0] is not None and softmax.seen[0].shape == (8, 1)
    standard = _spy(GAN)(mlp_generator(), mlp_discriminator(), LATENT)
    standard.compile(loss="non_saturating")
    standard.train_step((tf.constant(data(8)),))
    assert standard.seen == [None]


def test_invalid_arguments():
    g, d = mlp_generator(), mlp_discriminator()
    with pytest.raises(TypeError, match="argument `generator`"):
        GAN(lambda z: z, d, LATENT)
    with pytest.raises(ValueError, match="argument `latent_dim`"):
        GAN(g, d, 0)
    with pytest.raises(ValueError, match="argument `d_steps`"):
        GAN(g, d, LATENT, d_steps=0)
    gan = GAN(g, d, LATENT)
    with pytest.raises((RuntimeError, ValueError), match="compile"):
        gan.fit(data(8), verbose=0)
    opt = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="argument `g_optimizer`"):
        gan.compile(d_optimizer=opt, g_optimizer=opt)
    with pytest.raises(ValueError, match="argument `optimizer`"):
        gan.compile(optimizer="adam")
    with pytest.raises(ValueError, match="argument `loss`"):
        gan.compile(loss="wgan")
    with pytest.raises(ValueError, match="SoftmaxGANLoss"):
        SoftmaxGAN(g, d, LATENT).compile(loss="hinge")


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_dcgan_builders(shape, batch_norm):
    g = dcgan_generator(8, shape, width=4, batch_norm=batch_norm, seed=0)
    d = dcgan_discriminator(shape, width=4, batch_norm=batch_norm, seed=0)
    assert g.output_shape == (None, *shape)
    assert d.output_shape == (None, 1)
    has_bn = any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in g.layers + d.layers
    )
    assert has_bn is batch_norm
    images = g(np.random.default_rng(0).normal(size=(3, 8)), training=False)
    assert float(keras.ops.min(images)) >= 0.0
    assert float(keras.ops.max(images)) <= 1.0


def test_dcgan_value_range_and_errors():
    g = dcgan_generator(4, width=2, value_range=(-1.0, 1.0))
    out = g(np.full((2, 4), 50.0, "float32")).numpy()
    assert out.min() >= -1.0 and out.max() <= 1.0 and out.min() < 0.0
    with pytest.raises(ValueError, match="argument `image_shape`"):
        dcgan_generator(4, image_shape=(28, 32, 1))
    with pytest.raises(ValueError, match="argument `image_shape`"):
        dcgan_discriminator(image_shape=(27, 27, 1))
    with pytest.raises(ValueError, match="argument `dropout`"):
        dcgan_discriminator(dropout=1.0)


def test_dcgan_softmax_gan_one_epoch_round_trip():
    gan = SoftmaxGAN(
        dcgan_generator(8, width=4, batch_norm=False, seed=0),
        dcgan_discriminator(width=4, batch_norm=False, seed=1),
        latent_dim=8,
        seed=0,
    )
    gan.compile()
    x = np.random.default_rng(0).uniform(size=(16, 28, 28, 1))
    gan.fit(x.astype("float32"), batch_size=8, epochs=1, verbose=0)
    z = np.random.default_rng(2).normal(size=(2, 8)).astype("float32")
    run_model_saving_test(gan, z)
    assert keras_adv.models.SoftmaxGAN is SoftmaxGAN


def test_validation_reports_losses_without_updating():
    gan = make_gan()
    x = data()
    history = gan.fit(
        x, epochs=1, batch_size=32, validation_data=(x,), verbose=0
    )
    assert {"val_d_loss", "val_g_loss"} <= set(history.history)
    before = [w.copy() for w in gan.get_weights()]
    result = gan.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    for a, b in zip(before, gan.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Softmax GAN losses are bounded below by log(N) terms; finite values.
    assert np.isfinite(result["d_loss"]) and np.isfinite(result["g_loss"])
    fake = gan.generator(gan.sample_latent(32), training=False)
    real_logits = gan.discriminator(x[:32], training=False)
    fake_logits = gan.discriminator(fake, training=False)
    d_loss = float(gan.discriminator_loss(real_logits, fake_logits))
    assert d_loss >= np.log(32) - 1e-4  # -mean(real) + lse(all) >= log N


def _gan_with(discriminator):
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4)])
    gan = GAN(generator, discriminator, latent_dim=2, seed=0)
    gan.compile(
        d_optimizer=keras.optimizers.SGD(0.01),
        g_optimizer=keras.optimizers.SGD(0.01),
    )
    return gan


def test_gan_discriminator_with_two_logits_is_refused():
    disc = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    x = np.zeros((8, 4), "float32")
    with pytest.raises(ValueError, match="one logit per sample"):
        _gan_with(disc).fit(x, epochs=1, batch_size=4, verbose=0)


def test_gan_discriminator_with_two_outputs_is_refused():
    inputs = keras.Input((4,))
    disc = keras.Model(
        inputs, [keras.layers.Dense(1)(inputs), keras.layers.Dense(1)(inputs)]
    )
    x = np.zeros((8, 4), "float32")
    with pytest.raises(ValueError, match="2 outputs"):
        _gan_with(disc).fit(x, epochs=1, batch_size=4, verbose=0)
