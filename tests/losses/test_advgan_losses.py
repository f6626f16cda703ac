"""AdvGAN's loss terms: closed-form values and stated reductions."""

import json

import keras
import numpy as np
import pytest

from keras_adv.losses import CWLoss
from keras_adv.losses import PerturbationHinge
from keras_adv.losses import cw_loss
from keras_adv.losses import perturbation_hinge

LOGITS = np.array([[2.0, 3.0, -1.0], [5.0, 0.0, 1.0], [0.0, 0.0, 4.0]])


def test_cw_untargeted_is_the_clamped_true_class_margin():
    labels = np.array([1, 0, 0])
    # z_y - max_{j != y} z_j: 3 - 2, 5 - 1, 0 - 4.
    np.testing.assert_allclose(cw_loss(labels, LOGITS), [1.0, 4.0, 0.0])
    np.testing.assert_allclose(
        cw_loss(labels, LOGITS, kappa=2.0), [1.0, 4.0, -2.0]
    )


def test_cw_targeted_is_the_clamped_target_margin():
    targets = np.array([0, 2, 2])
    # max_{j != t} z_j - z_t: 3 - 2, 5 - 1, 0 - 4.
    np.testing.assert_allclose(
        cw_loss(targets, LOGITS, targeted=True), [1.0, 4.0, 0.0]
    )
    np.testing.assert_allclose(
        cw_loss(targets, LOGITS, kappa=0.5, targeted=True), [1.0, 4.0, -0.5]
    )


def test_cw_gradient_stops_at_the_confidence():
    import tensorflow as tf

    z = tf.constant([[0.0, 0.0, 4.0]])
    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = cw_loss(np.array([0]), z, kappa=1.0)
    np.testing.assert_array_equal(tape.gradient(loss, z), [[0.0, 0.0, 0.0]])


def test_hinge():
    delta = np.zeros((3, 2, 2, 1), "float32")
    delta[0, 0, 0, 0], delta[0, 1, 1, 0] = 3.0, 4.0  # norm 5
    delta[1, 0, 0, 0] = 0.5  # norm 0.5
    np.testing.assert_allclose(perturbation_hinge(delta, 1.0), [4.0, 0.0, 0.0])


def test_reductions_are_stated_and_differ_by_the_batch_size():
    labels = np.array([1, 0, 0])
    mean = float(CWLoss()(labels, LOGITS))
    total = float(CWLoss(reduction="sum")(labels, LOGITS))
    assert mean == pytest.approx(5.0 / 3.0)
    assert total == pytest.approx(3 * mean)
    per_sample = CWLoss(kappa=9.0, reduction=None)(labels, LOGITS)
    np.testing.assert_allclose(per_sample, [1.0, 4.0, -4.0])
    delta = np.array([[3.0, 4.0], [0.0, 0.0]])
    assert float(PerturbationHinge(c=1.0)(None, delta)) == pytest.approx(2.0)
    assert float(
        PerturbationHinge(c=1.0, reduction="sum")(None, delta)
    ) == pytest.approx(4.0)


def test_configs_round_trip_through_json():
    for loss in (CWLoss(kappa=0.5, targeted=True), PerturbationHinge(c=2.0)):
        config = json.loads(
            json.dumps(keras.saving.serialize_keras_object(loss))
        )
        restored = keras.saving.deserialize_keras_object(config)
        assert type(restored) is type(loss)
        assert restored.get_config() == loss.get_config()


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: CWLoss(kappa=-1.0), "kappa"),
        (lambda: CWLoss(targeted="yes"), "targeted"),
        (lambda: PerturbationHinge(c=float("nan")), "c"),
    ],
)
def test_invalid_arguments(make, name):
    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        make()
