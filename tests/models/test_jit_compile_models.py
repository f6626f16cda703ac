"""`jit_compile=True` (XLA) training of `AdvGAN` and `PerturbationCVAE`.

Both models accept `compile(jit_compile=True)` (`AdvGAN.compile` passes
its keyword arguments through `GAN.compile` to `keras.Model.compile`;
`PerturbationCVAE` uses Keras' own `compile`), and a fit under XLA must
give the weights and logs of the default graph, to float tolerance, from
the same initial weights, data and seeds.

AdvGAN's steps draw nothing but the random targets, and XLA draws the
same random integers as TensorFlow's default kernels from the same seed
(`StatelessRandomUniformIntV2`), so even random targets compare exactly.
The CVAE's reparameterisation draws standard normals
(`keras.random.normal` in `GaussianSampling.call`,
keras_adv/layers/_sampling.py:97, i.e. `tf.random.stateless_normal`, op
`StatelessRandomNormalV2`): XLA compiles it, but its kernel turns the same
seed into other normals than the default CPU kernel (TensorFlow 2.21, also
with `alg="philox"`), so the comparison with the default graph replaces
the draw by fixed noise, and a seeded CVAE is compared XLA to XLA.
"""

import keras
import numpy as np
import pytest
from _advgan_models import every_term_advgan
from _advgan_models import points
from keras import ops

from keras_adv.layers import GaussianSampling
from keras_adv.losses import BetaSchedule
from keras_adv.models import cvae_mnist_fc

ATOL = 2e-6  # measured: at most 6e-8
RTOL = 1e-5


# ------------------------------------------------------------ helpers
def _flat(model):
    return np.concatenate([np.ravel(w) for w in model.get_weights()])


def _numpy_weights(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            rng.normal(scale=0.5, size=w.shape).astype("float32")
            for w in model.get_weights()
        ]
    )


def _assert_same_logs(jit_history, history):
    assert sorted(jit_history) == sorted(history)
    for key, values in history.items():
        np.testing.assert_allclose(
            jit_history[key], values, rtol=RTOL, atol=1e-6, err_msg=key
        )


@keras.saving.register_keras_serializable(package="test_jit_compile_models")
def next_class(labels):
    return (labels + 1) % 2


# ------------------------------------------------------------- AdvGAN
ADVGAN_MODES = {
    "untargeted": {"targeted": False, "classes": 2, "target_fn": None},
    "target_fn": {"targeted": True, "classes": 2, "target_fn": next_class},
    # Three classes: each random target is one of two other classes.
    "random_targets": {"targeted": True, "classes": 3, "target_fn": None},
}


def _advgan(jit_compile, mode):
    spec = ADVGAN_MODES[mode]
    gan = every_term_advgan(
        spec["classes"],
        spec["targeted"],
        spec["target_fn"],
        jit_compile=jit_compile,
    )
    assert gan.jit_compile is jit_compile
    initial = _flat(gan.generator)
    x, y = points(64)
    history = gan.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return gan, initial, history.history


@pytest.mark.parametrize("mode", list(ADVGAN_MODES))
def test_advgan_trains_the_same_under_xla(mode):
    gan, initial, history = _advgan(False, mode)
    jit_gan, jit_initial, jit_history = _advgan(True, mode)
    np.testing.assert_array_equal(jit_initial, initial)
    assert np.abs(_flat(gan.generator) - initial).max() > 1e-3  # it trained
    assert history["g_hinge"][0] > 1e-3  # the hinge term is active
    for net in ("generator", "discriminator", "target_model"):
        np.testing.assert_allclose(
            _flat(getattr(jit_gan, net)),
            _flat(getattr(gan, net)),
            rtol=0,
            atol=ATOL,
            err_msg=net,
        )
    _assert_same_logs(jit_history, history)
    # 64 samples, batch 16, 2 epochs, d_steps=2.
    assert int(jit_gan.g_optimizer.iterations.numpy()) == 8
    assert int(jit_gan.d_optimizer.iterations.numpy()) == 16


# --------------------------------------------------- PerturbationCVAE
X = np.random.default_rng(0).uniform(0.2, 0.8, size=(32, 2, 2, 1))
X = X.astype("float32")
X_TILDE = np.clip(
    X + np.random.default_rng(1).uniform(-0.1, 0.1, size=X.shape), 0, 1
).astype("float32")


class FixedNoiseSampling(GaussianSampling):
    """`GaussianSampling` with fixed noise `sin(1.3 row + 2.9 column)`."""

    def call(self, inputs, noise=None):
        mean = ops.cast(inputs[0], "float32")
        rows = ops.cumsum(ops.ones_like(mean), axis=0)
        columns = ops.cumsum(ops.ones_like(mean), axis=1)
        noise = ops.sin(1.3 * rows + 2.9 * columns)
        return super().call(inputs, noise=noise)


def _cvae(jit_compile, fixed_noise):
    # The smallest builder; BetaSchedule is evaluated in the graph from
    # the optimizer's step counter: 0, 0.25, 0.5, 0.75, then 1 from step 4.
    cvae = cvae_mnist_fc(
        hidden=8,
        latent_dim=2,
        input_shape=(2, 2, 1),
        beta=BetaSchedule([0, 4], [0.0, 1.0]),
        seed=0,
    )
    for seed, net in enumerate((cvae.prior, cvae.recognition, cvae.decoder)):
        _numpy_weights(net, seed)
    if fixed_noise:
        cvae.sampling = FixedNoiseSampling(cvae.log_var_range)
    cvae.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit_compile)
    assert cvae.jit_compile is jit_compile
    history = cvae.fit(
        X, X_TILDE, batch_size=8, epochs=2, shuffle=False, verbose=0
    )
    return cvae, history.history


def _networks(cvae):
    return np.concatenate(
        [_flat(n) for n in (cvae.prior, cvae.recognition, cvae.decoder)]
    )


def test_cvae_trains_the_same_under_xla_with_fixed_noise():
    cvae, history = _cvae(False, fixed_noise=True)
    jit_cvae, jit_history = _cvae(True, fixed_noise=True)
    np.testing.assert_allclose(
        _networks(jit_cvae), _networks(cvae), rtol=0, atol=ATOL
    )
    _assert_same_logs(jit_history, history)
    # 4 steps per epoch: beta means (0 + .25 + .5 + .75) / 4, then 1.
    np.testing.assert_allclose(jit_history["beta"], [0.375, 1.0], rtol=1e-6)
    assert float(jit_cvae.beta) == pytest.approx(1.0)
    assert int(jit_cvae.optimizer.iterations.numpy()) == 8
    reference, _ = _cvae(False, fixed_noise=False)
    # The noise matters: the seeded draws train other weights.
    assert np.abs(_networks(reference) - _networks(cvae)).max() > 1e-3


def test_seeded_cvae_repeats_under_xla():
    # Same seed, same result under XLA too (its normals differ from the
    # default kernel's, so the comparison is XLA against XLA).
    first, history = _cvae(True, fixed_noise=False)
    second, again = _cvae(True, fixed_noise=False)
    np.testing.assert_array_equal(_networks(second), _networks(first))
    assert np.isfinite(history["loss"]).all()
    assert history == again
