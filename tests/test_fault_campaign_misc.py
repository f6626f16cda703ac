"""Fault-campaign cases outside attacks and training: GAN, metrics, data."""

import os

import keras
import numpy as np
import pytest

from keras_adv.datasets import from_spec
from keras_adv.datasets import load_npz
from keras_adv.metrics import class_coverage
from keras_adv.models import GAN


def _gan(discriminator):
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
        _gan(disc).fit(x, epochs=1, batch_size=4, verbose=0)


def test_gan_discriminator_with_two_outputs_is_refused():
    inputs = keras.Input((4,))
    disc = keras.Model(
        inputs, [keras.layers.Dense(1)(inputs), keras.layers.Dense(1)(inputs)]
    )
    x = np.zeros((8, 4), "float32")
    with pytest.raises(ValueError, match="2 outputs"):
        _gan(disc).fit(x, epochs=1, batch_size=4, verbose=0)


def test_class_coverage_refuses_logits():
    with pytest.raises(ValueError, match="softmax"):
        class_coverage(np.array([[3.0, -1.0], [0.5, 2.0]]))


def test_npz_float_images_outside_unit_range_are_refused(tmp_path):
    path = os.path.join(tmp_path, "d.npz")
    np.savez(path, x=np.full((2, 4, 4, 1), 200.0, "float32"), y=[0, 1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_npz(path)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        from_spec("npz:" + path)
