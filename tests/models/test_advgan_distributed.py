"""AdvGAN under tf.distribute.MirroredStrategy (2 CPU devices, subprocess).

An AdvGAN trained on two replicas must equal the same AdvGAN trained on
one device (same initial weights, data, global batch and order): every
loss is a batch mean, and `GAN.apply_update` divides each replica's loss
by the number of replicas, so the summed replica gradients are the
one-device gradient of the global batch. Plain SGD is used because Adam
is (up to its epsilon) invariant to the scale of the gradients and would
hide a missing or doubled division; a control run without the division
shows the comparison catches it.

Covered: untargeted, and targeted with a deterministic registered
`target_fn` (random targets are drawn per replica, so they cannot match a
one-device run), with the step's one `G(x)` passed to the hooks, and
untargeted with hooks that compute their own `G(x)` each (a subclass
overriding them with `super()`, as `tests/models/test_advgan.py`); the
replicas draw different random targets (each folds its replica id into
the draw, as `GAN.sample_latent` does).

Logical devices must be configured before TensorFlow initialises, so the
runs happen in one subprocess (`tests/_two_cpus.py`).
"""

import _two_cpus
import numpy as np
import pytest

SCRIPT = r"""
import json

import keras
import numpy as np
import tensorflow as tf
from _advgan_models import EPS, FEATURES, dense_discriminator, dense_generator
from _advgan_models import every_term_advgan, points

from keras_adv.distribute import _replicas
from keras_adv.models import AdvGAN
from keras_adv.testing import linear_classifier


@keras.saving.register_keras_serializable(package="test_advgan_distributed")
def next_class(labels):
    return (labels + 1) % 2


def flat(model):
    return np.concatenate([np.ravel(w) for w in model.get_weights()]).tolist()


class HookByHook(AdvGAN):
    # Hooks that ignore the step's G(x) and compute their own.
    def discriminator_step(self, x, y=None, x_adv=None):
        return super().discriminator_step(x, y)

    def generator_step(self, x, y=None, delta=None, tape=None):
        return super().generator_step(x, y)


def train(strategy, targeted, cls=AdvGAN):
    scope = strategy.scope() if strategy is not None else tf.device("/cpu:0")
    with scope:
        gan = every_term_advgan(
            targeted=targeted,
            target_fn=next_class if targeted else None,
            cls=cls,
        )
    initial = {
        "generator": flat(gan.generator),
        "discriminator": flat(gan.discriminator),
    }
    x, y = points(64)
    history = gan.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    logs = gan.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    return {
        "generator": flat(gan.generator),
        "discriminator": flat(gan.discriminator),
        "target": flat(gan.target_model),
        "initial": initial,
        "history": {
            k: [float(v) for v in vs] for k, vs in history.history.items()
        },
        "evaluate": {k: float(v) for k, v in logs.items()},
        "g_iterations": int(gan.g_optimizer.iterations.numpy()),
        "d_iterations": int(gan.d_optimizer.iterations.numpy()),
    }


def replica_targets(strategy):
    # Random targets (5 classes, all labels 0) drawn inside the replicas.
    with strategy.scope():
        gan = AdvGAN(
            dense_generator(num_classes=5),
            dense_discriminator(),
            linear_classifier(np.eye(FEATURES, 5)),
            eps=EPS,
            targeted=True,
            seed=0,
        )
    labels = np.zeros(32, "int64")
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(labels).batch(32)
    )
    step = tf.function(lambda b: strategy.run(gan.sample_targets, args=(b,)))
    batch = next(iter(dataset))
    return [
        v.numpy().tolist()
        for v in strategy.experimental_local_results(step(batch))
    ]


strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = {"replicas": strategy.num_replicas_in_sync}
for name, targeted, cls in (
    ("untargeted", False, AdvGAN),
    ("target_fn", True, AdvGAN),
    ("hooks", False, HookByHook),
):
    out[name] = {
        "one_device": train(None, targeted, cls),
        "two_replicas": train(strategy, targeted, cls),
    }
out["replica_targets"] = replica_targets(strategy)
# Control: the same two-replica run without the division by the number of
# replicas (summed, not averaged, replica gradients).
_replicas.scale_for_replicas = lambda loss: loss
out["unscaled"] = train(strategy, False)
print("RESULT" + json.dumps(out))
"""

MODES = ("untargeted", "target_fn", "hooks")
RTOL = 1e-4
ATOL = 1e-5


@pytest.fixture(scope="module")
def results():
    return _two_cpus.run(SCRIPT)


def test_two_replicas_and_exact_step_counts(results):
    assert results["replicas"] == 2
    for mode in MODES:
        for run in results[mode].values():
            # 64 samples, global batch 16: 4 steps per epoch, 2 epochs;
            # d_steps=2 discriminator updates per generator update.
            assert run["g_iterations"] == 8
            assert run["d_iterations"] == 16


@pytest.mark.parametrize("mode", MODES)
def test_two_replicas_train_the_same_networks_as_one_device(results, mode):
    one = results[mode]["one_device"]
    two = results[mode]["two_replicas"]
    for net in ("generator", "discriminator"):
        # The runs started alike and trained: the network moved.
        np.testing.assert_array_equal(two["initial"][net], one["initial"][net])
        moved = np.abs(np.subtract(one[net], one["initial"][net])).max()
        assert moved > 100 * ATOL, net
        np.testing.assert_allclose(
            two[net], one[net], rtol=RTOL, atol=ATOL, err_msg=net
        )
    # The frozen target is untouched by either run.
    np.testing.assert_array_equal(two["target"], one["target"])


@pytest.mark.parametrize("mode", MODES)
def test_two_replicas_log_the_one_device_epoch_means(results, mode):
    one = results[mode]["one_device"]
    two = results[mode]["two_replicas"]
    assert sorted(two["history"]) == sorted(one["history"])
    for key, values in one["history"].items():
        np.testing.assert_allclose(
            two["history"][key], values, rtol=RTOL, atol=ATOL, err_msg=key
        )
    assert one["history"]["g_hinge"][0] > 1e-3  # the hinge term is active
    for key, value in one["evaluate"].items():
        np.testing.assert_allclose(
            two["evaluate"][key], value, rtol=RTOL, atol=ATOL, err_msg=key
        )


def test_the_comparison_detects_unaveraged_replica_gradients(results):
    # Without the 1/replicas scaling the two replicas' gradients add up to
    # twice the one-device gradient; with SGD the weights then differ.
    one = results["untargeted"]["one_device"]
    unscaled = results["unscaled"]
    diff = np.abs(np.subtract(unscaled["generator"], one["generator"])).max()
    assert diff > 100 * ATOL


def test_replicas_draw_independent_random_targets(results):
    first, second = results["replica_targets"]
    assert len(first) == len(second) == 16
    # Labels are all 0: targets are uniform over classes 1-4.
    assert min(first + second) >= 1
    assert max(first + second) <= 4
    # Independent draws agree on all 16 samples with probability 4**-16.
    assert first != second
