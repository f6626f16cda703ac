"""The `Attack` base's entry path, shared by every attack.

Bad inputs (eps, labels, x, model outputs) give clear errors naming the
argument, eagerly and inside a traced `perturb`; a training-mode attack
leaves BatchNorm statistics unchanged; an unregistered callable loss
attacks and only refuses to serialise.

`m` is a small Dense model on 8x8x1 inputs with 4 logits.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD


@pytest.fixture(scope="module")
def m():
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(0)
    return rng.uniform(size=(4, 8, 8, 1)).astype("float32")


def test_infinite_per_sample_eps_is_rejected(m, x):
    with pytest.raises(ValueError, match="eps"):
        PGD(norm="l2")(m, x, eps=np.array([0.5, np.inf, 0.5, 0.5]))


@pytest.mark.parametrize("eps", [True, np.bool_(False)])
def test_bool_eps_is_rejected(eps):
    with pytest.raises(TypeError, match="eps"):
        FGSM(eps=eps)


@pytest.mark.parametrize("eps", ["abc", "0.3", None, {"eps": 1}])
def test_non_numeric_eps_is_rejected_by_the_constructor(eps):
    with pytest.raises((TypeError, ValueError), match="eps"):
        FGSM(eps=eps)


def test_string_eps_at_call_time_names_the_argument(m, x):
    with pytest.raises(TypeError, match="eps"):
        FGSM()(m, x, eps="0.1")


def test_fractional_float_labels_are_rejected(m, x):
    with pytest.raises(ValueError, match="integer class ids"):
        PGD(steps=1)(m, x, np.array([0.7, 1.6, 2.5, 3.9]))


def test_integer_valued_float_labels_are_accepted(m, x):
    x_adv = PGD(steps=1, seed=0)(m, x, np.array([0.0, 1.0, 2.0, 3.0]))
    assert x_adv.shape == x.shape


def test_string_labels_are_rejected(m, x):
    with pytest.raises(TypeError, match="`y`"):
        PGD(steps=1)(m, x, np.array(["a", "b", "c", "d"]))


def test_dict_output_model_error_is_not_self_contradictory(x):
    inputs = keras.Input((8, 8, 1))
    logits = keras.layers.Dense(4)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, {"logits": logits})
    with pytest.raises(ValueError, match="dict with keys") as info:
        FGSM()(model, x)
    assert "1 outputs" not in str(info.value)


def test_graph_path_checks_value_range_and_labels(m, x):
    attack = PGD(eps=0.3, steps=2, seed=0)

    @tf.function
    def run(x, y):
        return attack.perturb(m, x, y, seed=tf.constant([1, 2]))

    with pytest.raises(tf.errors.InvalidArgumentError, match="value_range"):
        run(x * 255.0, np.arange(4))
    with pytest.raises(tf.errors.InvalidArgumentError, match="fractional"):
        run(x, np.array([0.5, 1.0, 2.0, 3.0], "float32"))
    with pytest.raises(TypeError, match="floating-point"):
        run((x * 255).astype("uint8"), np.arange(4))
    np.testing.assert_array_equal(
        run(x, np.arange(4)).shape, x.shape
    )  # valid inputs still run


def test_training_mode_attack_leaves_batchnorm_statistics_unchanged(x):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(4),
        ]
    )
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    x_adv = PGD(eps=0.1, steps=3, training=True, seed=0)(model, x)
    assert x_adv.shape == x.shape
    for v, b in zip(model.non_trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), b)


def test_unregistered_callable_loss_attacks_but_does_not_serialise(m, x):
    attack = PGD(eps=0.1, steps=2, seed=0, loss=lambda y, z: -z[:, 0])
    x_adv = attack(m, x)
    assert x_adv.shape == x.shape
    with pytest.raises(ValueError, match="cannot be serialised"):
        attack.get_config()


def test_labels_are_range_checked_inside_graphs_too():
    # `perturb` (what training steps and evaluation graphs call) checks
    # labels against the model's classes, as the eager call does.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    attack = PGD(eps=0.1, steps=1)
    x = np.full((2, 3), 0.5, "float32")

    @tf.function
    def run(y):
        return attack.perturb(model, x, y)

    run(np.array([0, 3]))
    for bad in ([0, 4], [-1, 0]):
        with pytest.raises(tf.errors.InvalidArgumentError, match="y"):
            run(np.array(bad))
