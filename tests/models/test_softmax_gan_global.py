"""Softmax GAN over the global batch: `SoftmaxGANLoss(global_batch=True)`.

On two replicas (a `MirroredStrategy` over two logical CPUs, in a
subprocess: logical devices must be set before TensorFlow starts) the
global-batch loss must be, to float tolerance, one device's loss on the
same global batch:

* the loss each replica reports is the global batch's loss, and each
  replica's gradient with respect to its own logits, divided by the
  number of replicas as `GAN.apply_update` does, is one device's gradient
  with respect to the same samples' logits (also with an uneven split);
* a `SoftmaxGAN` trained with it follows one device's weights (latents
  read from the data, so both see the same generated samples), while the
  default per-replica loss does not.

The two-worker run of the same training is `softmax_gan_global` in
`tests/distribute/multi_worker_program.py` (`pytest -m multiworker`).

    python tests/models/test_softmax_gan_global.py   # the two-replica run
"""

import json
import os
import subprocess
import sys
import threading

import tensorflow as tf

if __name__ == "__main__":
    # Two logical CPUs, before TensorFlow initialises its devices.
    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        _cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_adv import losses  # noqa: E402
from keras_adv.losses import _gan as gan_losses  # noqa: E402
from keras_adv.models import SoftmaxGAN  # noqa: E402
from keras_adv.testing import assert_config_round_trip  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
ATOL = 1e-6
# 69 samples in batches of 16: the last batch of 5 splits 3 / 2.
SAMPLES, BATCH, EPOCHS, LR = 69, 16, 2, 0.5
REAL = np.array([1.5, -0.5, 2.0, 0.25, -1.0], "float32")
FAKE = np.array([0.5, 3.0, -2.0, 0.0], "float32")


# --------------------------------------------------------------- helpers
_LATENT = threading.local()  # per replica thread (MirroredStrategy)


class DataLatentSoftmaxGAN(SoftmaxGAN):
    """Reads its latents from the data `(x, z)`: the same generated samples
    on one device and, split like `x`, on the replicas."""

    def train_step(self, data):
        _LATENT.z = data[1]
        return super().train_step(data)

    def sample_latent(self, batch_size):
        return _LATENT.z


def dataset():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(SAMPLES, 6)).astype("float32")
    z = rng.normal(size=(SAMPLES, 4)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, z)).batch(BATCH)


def gan(global_batch):
    rng = np.random.default_rng(1)
    generator = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(6, activation="sigmoid")]
    )
    discriminator = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    for network in (generator, discriminator):
        network.set_weights(
            [
                rng.normal(scale=0.5, size=w.shape).astype("float32")
                for w in network.get_weights()
            ]
        )
    model = DataLatentSoftmaxGAN(generator, discriminator, latent_dim=4)
    model.compile(
        d_optimizer=keras.optimizers.SGD(LR),
        g_optimizer=keras.optimizers.SGD(LR),
        loss=losses.SoftmaxGANLoss(global_batch=global_batch),
    )
    return model


def train(global_batch, strategy=None):
    if strategy is None:
        model = gan(global_batch)
    else:
        with strategy.scope():
            model = gan(global_batch)
    history = model.fit(dataset(), epochs=EPOCHS, verbose=0)
    return {
        "weights": [w.tolist() for w in model.get_weights()],
        "history": {
            k: [float(v) for v in vs] for k, vs in history.history.items()
        },
    }


def replica_losses_and_gradients(strategy, real, fake, split):
    """Each replica's loss and gradient (divided by the replica count)."""
    loss = losses.SoftmaxGANLoss(global_batch=True)

    def part(values, parts):
        cuts = np.cumsum([0, *parts])
        return [values[a:b] for a, b in zip(cuts[:-1], cuts[1:])]

    real_parts = part(real, [split[0], len(real) - split[0]])
    fake_parts = part(fake, [split[1], len(fake) - split[1]])

    def value_fn(parts):
        return lambda ctx: tf.constant(parts[ctx.replica_id_in_sync_group])

    real_d = strategy.experimental_distribute_values_from_function(
        value_fn(real_parts)
    )
    fake_d = strategy.experimental_distribute_values_from_function(
        value_fn(fake_parts)
    )

    @tf.function
    def run(real_d, fake_d):
        def step(r, f):
            out = {}
            for name, fn in (
                ("d", loss.discriminator_loss),
                ("g", loss.generator_loss),
            ):
                with tf.GradientTape() as tape:
                    tape.watch([r, f])
                    value = fn(r, f)
                    scaled = value / strategy.num_replicas_in_sync
                g_r, g_f = tape.gradient(scaled, [r, f])
                out[name] = (value, g_r, g_f)
            return out

        return strategy.run(step, args=(real_d, fake_d))

    out = run(real_d, fake_d)
    result = {}
    for name in ("d", "g"):
        value, g_r, g_f = out[name]
        local = strategy.experimental_local_results
        result[name] = {
            "values": [float(v) for v in local(value)],
            "grad": np.concatenate(
                [np.asarray(v) for v in local(g_r)]
                + [np.asarray(v) for v in local(g_f)]
            ).tolist(),
        }
    return result


def one_device_losses_and_gradients(real, fake):
    result = {}
    for name, fn in (
        ("d", gan_losses.softmax_gan_discriminator_loss),
        ("g", gan_losses.softmax_gan_generator_loss),
    ):
        r, f = tf.constant(real), tf.constant(fake)
        with tf.GradientTape() as tape:
            tape.watch([r, f])
            value = fn(r, f)
        g_r, g_f = tape.gradient(value, [r, f])
        result[name] = {
            "value": float(value),
            "grad": np.concatenate([g_r.numpy(), g_f.numpy()]).tolist(),
        }
    return result


def main():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = {"replicas": strategy.num_replicas_in_sync}
    for split in ((3, 2), (2, 3)):
        out[f"gradients_{split[0]}_{split[1]}"] = replica_losses_and_gradients(
            strategy, REAL, FAKE, split
        )
    out["two_replicas_global"] = train(True, strategy)
    out["two_replicas_per_replica"] = train(False, strategy)
    print("RESULT " + json.dumps(out), flush=True)


# ----------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def two_replicas():
    env = dict(
        os.environ,
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
    )
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    lines = [s for s in proc.stdout.splitlines() if s.startswith("RESULT ")]
    assert lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.fixture(scope="module")
def one_device():
    return train(True)


def flat(result):
    return np.concatenate([np.ravel(w) for w in result["weights"]])


def test_one_device_global_batch_is_the_plain_loss():
    loss = losses.SoftmaxGANLoss(global_batch=True)
    expected = one_device_losses_and_gradients(REAL, FAKE)
    for name, fn in (
        ("d", loss.discriminator_loss),
        ("g", loss.generator_loss),
    ):
        r, f = tf.constant(REAL), tf.constant(FAKE)
        with tf.GradientTape() as tape:
            tape.watch([r, f])
            value = fn(r, f)
        grad = np.concatenate([g.numpy() for g in tape.gradient(value, [r, f])])
        np.testing.assert_allclose(float(value), expected[name]["value"])
        np.testing.assert_allclose(grad, expected[name]["grad"], atol=1e-7)


def test_config_and_validation():
    restored = assert_config_round_trip(
        losses.SoftmaxGANLoss(global_batch=True)
    )
    assert restored.global_batch is True
    assert losses.SoftmaxGANLoss().get_config() == {"global_batch": False}
    assert repr(losses.SoftmaxGANLoss()) == "SoftmaxGANLoss()"
    serialized = keras.saving.serialize_keras_object(
        losses.SoftmaxGANLoss(global_batch=True)
    )
    assert gan_losses.get_gan_loss(serialized).global_batch is True
    with pytest.raises(TypeError, match="global_batch"):
        losses.SoftmaxGANLoss(global_batch="yes")


def test_softmax_gan_saves_the_option(tmp_path):
    model = gan(True)
    model.fit(dataset().take(1), epochs=1, verbose=0)
    path = str(tmp_path / "gan.keras")
    model.save(path)
    loaded = keras.saving.load_model(
        path,
        custom_objects={"DataLatentSoftmaxGAN": DataLatentSoftmaxGAN},
    )
    assert loaded.gan_loss.global_batch is True


@pytest.mark.parametrize("split", ["3_2", "2_3"])
def test_each_replica_reports_the_global_loss_and_its_gradient(
    two_replicas, split
):
    # Replica r's gradient / 2 with respect to its logits is one device's
    # gradient with respect to the same logits: summed over the replicas,
    # the global batch's gradient.
    assert two_replicas["replicas"] == 2
    expected = one_device_losses_and_gradients(REAL, FAKE)
    got = two_replicas[f"gradients_{split}"]
    for name in ("d", "g"):
        np.testing.assert_allclose(
            got[name]["values"], [expected[name]["value"]] * 2, rtol=1e-6
        )
        np.testing.assert_allclose(
            got[name]["grad"], expected[name]["grad"], atol=1e-7
        )


def test_two_replicas_train_like_one_device(two_replicas, one_device):
    got = two_replicas["two_replicas_global"]
    np.testing.assert_allclose(flat(got), flat(one_device), atol=ATOL)
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(
            got["history"][key], one_device["history"][key], rtol=1e-5
        )


def test_the_per_replica_loss_would_not(two_replicas, one_device):
    # Sensitivity: the default (a partition function per replica) trains
    # differently, by far more than the tolerance above.
    got = flat(two_replicas["two_replicas_per_replica"])
    assert np.max(np.abs(got - flat(one_device))) > 1000 * ATOL


if __name__ == "__main__":
    main()
