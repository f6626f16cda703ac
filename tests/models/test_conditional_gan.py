"""Tests of ConditionalGAN and its builders (conditional DCGAN generator,
projection discriminator) on 8x8 images: fast, no training to quality."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.callbacks import GANMonitor
from keras_adv.models import ConditionalGAN
from keras_adv.models import conditional_dcgan_generator
from keras_adv.models import projection_discriminator
from keras_adv.testing import run_model_saving_test

LATENT = 4
CLASSES = 3
SHAPE = (8, 8, 1)


def make_gan(seed=0, spectral_norm=True, **compile_kwargs):
    gan = ConditionalGAN(
        conditional_dcgan_generator(
            LATENT, CLASSES, SHAPE, width=4, embedding_dim=3, seed=seed
        ),
        projection_discriminator(
            SHAPE, CLASSES, width=4, spectral_norm=spectral_norm, seed=seed + 7
        ),
        latent_dim=LATENT,
        num_classes=CLASSES,
        seed=seed,
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-2),
        g_optimizer=keras.optimizers.Adam(1e-2),
        **compile_kwargs,
    )
    return gan


def data(n=16):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, *SHAPE)).astype("float32")
    return x, np.arange(n) % CLASSES


def latent(n, seed=1):
    return (
        np.random.default_rng(seed).normal(size=(n, LATENT)).astype("float32")
    )


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("spectral_norm", [True, False])
def test_builders_shapes_and_value_range(shape, spectral_norm):
    g = conditional_dcgan_generator(8, 10, shape, width=4, seed=0)
    d = projection_discriminator(
        shape, 10, width=4, spectral_norm=spectral_norm, seed=0
    )
    assert g.output_shape == (None, *shape)
    assert d.output_shape == (None, 1)
    assert [tuple(i.shape) for i in g.inputs] == [(None, 8), (None,)]
    assert [tuple(i.shape) for i in d.inputs] == [(None, *shape), (None,)]
    images = g([latent(3, 0).repeat(2, axis=1), np.array([0, 5, 9])])
    assert images.shape == (3, *shape)
    assert 0.0 <= float(keras.ops.min(images))
    assert float(keras.ops.max(images)) <= 1.0
    logits = d([images, tf.constant([0, 5, 9])], training=True)
    assert logits.shape == (3, 1)
    wrapped = [
        layer.name
        for layer in d.layers
        if isinstance(layer, keras.layers.SpectralNormalization)
    ]
    expected = ["conv_0", "conv_1", "class_embedding", "psi"]
    if shape[0] == 32:
        expected.insert(2, "conv_2")
    assert sorted(wrapped) == (sorted(expected) if spectral_norm else [])


def test_labels_condition_the_samples():
    gan = make_gan()
    z = latent(2)
    same_z = np.concatenate([z[:1], z[:1]])
    a = gan.generate(latent=same_z, labels=[0, 1])
    assert not np.allclose(a[0], a[1], atol=1e-4)
    # The generator itself: same z, other label, other image.
    b = gan.generator([same_z, np.array([2, 2])], training=False).numpy()
    np.testing.assert_allclose(b[0], b[1], atol=1e-6)
    assert not np.allclose(a[0], b[0], atol=1e-4)


def test_generate_labels_forms():
    gan = make_gan()
    z = latent(5)
    by_class = gan.generate(latent=z, labels=1)
    np.testing.assert_allclose(
        by_class,
        gan.generate(latent=z, labels=np.ones(5, "int64")),
        atol=1e-6,
    )
    # No labels: the classes in turn (what GANMonitor grids show).
    np.testing.assert_allclose(
        gan.generate(latent=z),
        gan.generate(latent=z, labels=np.arange(5) % CLASSES),
        atol=1e-6,
    )
    one_hot = np.eye(CLASSES)[[2, 0, 1, 1, 0]]
    np.testing.assert_allclose(
        gan.generate(latent=z, labels=one_hot),
        gan.generate(latent=z, labels=[2, 0, 1, 1, 0]),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        gan.generate(latent=z, labels=[2, 0, 1, 1, 0], batch_size=2),
        gan([z, np.array([2, 0, 1, 1, 0])]).numpy(),
        atol=1e-6,
    )
    assert gan.generate(4).shape == (4, *SHAPE)
    assert gan.generate(labels=[0, 2]).shape == (2, *SHAPE)
    with pytest.raises(ValueError, match="argument `labels`"):
        gan.generate(2, labels=[0, CLASSES])
    with pytest.raises(ValueError, match="argument `labels`"):
        gan.generate(3, labels=[0, 1])
    with pytest.raises(ValueError, match="argument `n`"):
        gan.generate()


def test_one_fit_step_updates_both_networks():
    gan = make_gan()
    g0 = [w.copy() for w in gan.generator.get_weights()]
    d0 = [w.copy() for w in gan.discriminator.get_weights()]
    x, y = data(8)
    history = gan.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
    assert np.isfinite(history.history["d_loss"]).all()
    assert int(gan.d_optimizer.iterations) == 1
    assert int(gan.g_optimizer.iterations) == 1
    changed_g = [
        not np.allclose(a, b) for a, b in zip(g0, gan.generator.get_weights())
    ]
    changed_d = [
        not np.allclose(a, b)
        for a, b in zip(d0, gan.discriminator.get_weights())
    ]
    assert any(changed_g) and any(changed_d)
    # The label embeddings of both networks are trained.
    embedding = gan.generator.get_layer("label_embedding").get_weights()[0]
    assert not np.allclose(embedding, g0[0])


@pytest.mark.parametrize("loss", ["softmax", "non_saturating"])
def test_other_losses_and_evaluate(loss):
    gan = make_gan(loss=loss)
    x, y = data(8)
    gan.fit(x, y, batch_size=4, epochs=1, verbose=0)
    result = gan.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    assert set(result) == {"d_loss", "g_loss"}
    assert np.isfinite(list(result.values())).all()


def test_hinge_is_the_default_loss():
    gan = ConditionalGAN(
        conditional_dcgan_generator(LATENT, CLASSES, SHAPE, width=2),
        projection_discriminator(SHAPE, CLASSES, width=2),
        LATENT,
        CLASSES,
    )
    gan.compile()
    assert type(gan.gan_loss).__name__ == "HingeGANLoss"


def test_seeds_make_it_repeatable():
    a, b = make_gan(seed=3), make_gan(seed=3)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    x, y = data(8)
    a.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    b.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.generate(4), b.generate(4), atol=1e-6)
    assert not np.allclose(a.generate(4), a.generate(4))
    labels = tf.constant([0, 1, 2])
    np.testing.assert_array_equal(
        a.sample(labels, seed=5), a.sample(labels, seed=5)
    )
    assert not np.allclose(a.sample(labels, seed=5), a.sample(labels, seed=6))


def test_sample_is_graph_safe():
    gan = make_gan()

    @tf.function
    def draw(labels, seed):
        return gan.sample(labels, seed=seed)

    labels = tf.constant([0, 1, 2, 0], tf.int64)
    first = draw(labels, tf.constant([1, 2]))
    np.testing.assert_array_equal(first, draw(labels, tf.constant([1, 2])))
    np.testing.assert_array_equal(first, gan.sample(labels, seed=[1, 2]))
    assert first.shape == (4, *SHAPE)
    assert draw.experimental_get_tracing_count() == 1
    # The GAN's own seed generator when no seed is given.
    assert gan.sample(labels).shape == (4, *SHAPE)


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_projection_term_is_the_papers(spectral_norm):
    """f(x, y) = psi(phi(x)) + v_y . phi(x) (Miyato and Koyama, eq. 3)."""
    d = projection_discriminator(
        SHAPE, CLASSES, width=2, spectral_norm=spectral_norm, seed=0
    )
    x = np.random.default_rng(0).uniform(size=(4, *SHAPE)).astype("float32")
    y = np.array([0, 1, 2, 1])
    if spectral_norm:
        d([x, y], training=True)  # one power iteration normalises weights
    features = keras.Model(d.inputs[0], d.get_layer("features").output)
    phi = features(x).numpy().astype("float64")

    def kernel(name):
        layer = d.get_layer(name)
        inner = getattr(layer, "layer", layer)
        return [w.astype("float64") for w in inner.get_weights()]

    w_psi, b_psi = kernel("psi")
    (v,) = kernel("class_embedding")  # (classes, features): row y is v_y
    assert v.shape == (CLASSES, phi.shape[1])
    expected = phi @ w_psi[:, 0] + b_psi[0] + np.sum(v[y] * phi, axis=1)
    logits = d([x, y], training=False).numpy()[:, 0]
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    # One-hot y: the projection is y^T V phi(x); a change of class moves
    # the logit by (v_a - v_b) . phi(x), whatever psi is.
    other = d([x, (y + 1) % CLASSES], training=False).numpy()[:, 0]
    np.testing.assert_allclose(
        logits - other,
        np.sum((v[y] - v[(y + 1) % CLASSES]) * phi, axis=1),
        rtol=1e-4,
        atol=1e-5,
    )
    if spectral_norm:
        # After normalisation V's largest singular value is close to 1.
        assert np.linalg.svd(v, compute_uv=False)[0] == pytest.approx(
            1.0, abs=0.3
        )


def test_keras_round_trip_compares_outputs():
    gan = make_gan()
    x, y = data(8)
    gan.fit(x, y, batch_size=8, epochs=1, verbose=0)
    inputs = [latent(5), np.array([0, 1, 2, 0, 1])]
    loaded = run_model_saving_test(gan, inputs)
    assert type(loaded) is ConditionalGAN
    assert loaded.num_classes == CLASSES
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        gan.get_config(), sort_keys=True
    )
    assert type(loaded.gan_loss).__name__ == "HingeGANLoss"
    images = np.random.default_rng(2).uniform(size=(5, *SHAPE))
    np.testing.assert_allclose(
        loaded.discriminator([images, inputs[1]]).numpy(),
        gan.discriminator([images, inputs[1]]).numpy(),
        atol=1e-6,
    )
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(loaded.g_optimizer.iterations) == 2


def test_gan_monitor_draws_every_class():
    gan = make_gan()
    monitor = GANMonitor(num_samples=6, grid_size=2, freq=1, seed=0)
    x, y = data(8)
    gan.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    samples, _ = monitor.evaluate()
    assert samples.shape == (6, *SHAPE)


def test_invalid_arguments():
    g = conditional_dcgan_generator(LATENT, CLASSES, SHAPE, width=2)
    d = projection_discriminator(SHAPE, CLASSES, width=2)
    plain = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(4)])
    with pytest.raises(ValueError, match="argument `generator`"):
        ConditionalGAN(plain, d, LATENT, CLASSES)
    with pytest.raises(ValueError, match="argument `discriminator`"):
        ConditionalGAN(g, plain, LATENT, CLASSES)
    with pytest.raises(ValueError, match="argument `num_classes`"):
        ConditionalGAN(g, d, LATENT, 1)
    with pytest.raises(ValueError, match="argument `num_classes`"):
        projection_discriminator(SHAPE, 1)
    with pytest.raises(TypeError, match="argument `spectral_norm`"):
        projection_discriminator(SHAPE, spectral_norm="yes")
    with pytest.raises(ValueError, match="argument `dropout`"):
        projection_discriminator(SHAPE, dropout=1.0)
    with pytest.raises(ValueError, match="argument `embedding_dim`"):
        conditional_dcgan_generator(embedding_dim=0)
    gan = make_gan()
    x, y = data(8)
    with pytest.raises(ValueError, match="argument `y`"):
        gan.fit(x, batch_size=8, epochs=1, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels"):
        gan.fit(x, y + CLASSES, batch_size=8, epochs=1, verbose=0)
