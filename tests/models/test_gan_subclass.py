"""Subclassing the GAN base: hooks are called; the docs' conditional GAN."""

import os
import re

import keras
import numpy as np
import tensorflow as tf

from keras_adv.models import GAN
from keras_adv.testing import run_model_saving_test

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "gan.md")


def _docs_example():
    text = open(DOCS, encoding="utf-8").read()
    match = re.search(
        r"<!-- conditional-gan-example -->\s*```python\n(.*?)```", text, re.S
    )
    assert match, "conditional GAN example not found in docs/gan.md"
    return match.group(1)


class CountingGAN(GAN):
    """Counts hook calls inside the compiled graph with variables."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = {
            name: keras.Variable(0, dtype="int32", trainable=False, name=name)
            for name in ("latent", "d_step", "g_step", "d_loss", "g_loss")
        }

    def _count(self, name):
        self.calls[name].assign_add(1)

    def sample_latent(self, batch_size):
        self._count("latent")
        return super().sample_latent(batch_size)

    def discriminator_step(self, x, y=None):
        self._count("d_step")
        return super().discriminator_step(x, y)

    def generator_step(self, x, y=None):
        self._count("g_step")
        logs = super().generator_step(x, y)
        logs["extra"] = 2.0 * logs["g_loss"]
        return logs

    def discriminator_loss(self, real_logits, fake_logits):
        self._count("d_loss")
        return super().discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, real_logits, fake_logits):
        self._count("g_loss")
        return super().generator_loss(real_logits, fake_logits)


class ExtraTrackerGAN(CountingGAN):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra_tracker = keras.metrics.Mean(name="extra")

    @property
    def metrics(self):
        return super().metrics + [self.extra_tracker]


def _nets():
    g = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    d = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    return g, d


def test_hooks_are_called_in_the_compiled_step():
    gan = ExtraTrackerGAN(*_nets(), latent_dim=3, d_steps=2, seed=0)
    gan.compile(loss="softmax")
    x = np.random.default_rng(0).normal(size=(24, 5)).astype("float32")
    history = gan.fit(x, batch_size=8, epochs=1, verbose=0)
    counts = {k: int(v.numpy()) for k, v in gan.calls.items()}
    # 3 steps, each: 2 D steps + 1 G step, one latent batch per step.
    assert counts == {
        "latent": 9,
        "d_step": 6,
        "g_step": 3,
        "d_loss": 6,
        "g_loss": 3,
    }
    # A value returned under a tracker's name is logged.
    assert set(history.history) == {"d_loss", "g_loss", "extra"}
    np.testing.assert_allclose(
        history.history["extra"][0],
        2.0 * history.history["g_loss"][0],
        rtol=1e-5,
    )


def test_overridden_loss_changes_training():
    class ZeroGLoss(GAN):
        def generator_loss(self, real_logits, fake_logits):
            return 0.0 * keras.ops.sum(fake_logits)

    gan = ZeroGLoss(*_nets(), latent_dim=3, seed=0)
    gan.compile(g_optimizer=keras.optimizers.SGD(0.1))
    before = [w.copy() for w in gan.generator.get_weights()]
    gan.train_step((tf.ones((4, 5)),))
    for a, b in zip(before, gan.generator.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_docs_conditional_gan_example_runs_and_round_trips():
    namespace = {}
    exec(compile(_docs_example(), DOCS, "exec"), namespace)
    cgan = namespace["cgan"]
    history = namespace["history"]
    assert set(history.history) == {"d_loss", "g_loss"}
    assert np.isfinite(history.history["d_loss"]).all()
    assert namespace["sevens"].shape == (4, 28, 28, 1)
    assert int(cgan.g_optimizer.iterations) == 8
    # Plain z cycles through the classes; generate() works unchanged.
    assert cgan.generate(3).shape == (3, 28, 28, 1)
    z = np.random.default_rng(0).normal(size=(5, 16)).astype("float32")
    loaded = run_model_saving_test(cgan, z)  # same generated samples
    assert type(loaded).__name__ == "ConditionalGAN"
    assert loaded.num_classes == 10
    assert int(loaded.g_optimizer.iterations) == 8
