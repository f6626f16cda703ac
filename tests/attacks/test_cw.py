"""Carlini-Wagner L2: closed forms on linear models and the checklist.

On a binary linear model the smallest L2 perturbation that reaches a
logit margin kappa is `(|margin| + kappa) / ||w_1 - w_0||_2` along
`w_1 - w_0`, which the attack must find.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import APGD
from keras_adv.attacks._cw import CarliniWagnerL2
from keras_adv.testing import TestCase
from keras_adv.testing import linear_classifier


@pytest.fixture(scope="module")
def binary_problem():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(10, 2)).astype("float32")
    bias = np.array([0.0, -0.2], "float32")
    x = rng.uniform(0.3, 0.7, size=(16, 10)).astype("float32")
    logits = x @ w + bias
    y = np.argmax(logits, axis=1)
    diff = w[:, 1] - w[:, 0]
    margin = np.abs(logits[:, 1] - logits[:, 0])
    return linear_classifier(w, bias), x, y, diff, margin


@pytest.fixture(scope="module")
def attack():
    # Every instance traces its own graph: the tests share this one.
    return CarliniWagnerL2()


def test_cw_norm_is_the_distance_to_the_boundary(binary_problem, attack):
    model, x, y, diff, margin = binary_problem
    expected = margin / np.linalg.norm(diff)
    x_adv = np.asarray(attack(model, x, y))
    norms = np.asarray(attack.perturbation_norms(model, x, x_adv, y))
    np.testing.assert_allclose(
        norms, np.linalg.norm(x_adv - x, axis=1), rtol=1e-5
    )
    assert np.all(np.argmax(model(x_adv), axis=1) != y)
    np.testing.assert_allclose(norms, expected, rtol=1e-3, atol=1e-4)
    # Along w_1 - w_0, towards the other class.
    toward = np.where(y == 0, 1.0, -1.0)[:, None] * diff
    cosine = np.sum((x_adv - x) * toward, axis=1) / (
        norms * np.linalg.norm(diff)
    )
    assert np.all(cosine > 0.999)
    # Deterministic: the same call gives the same result.
    np.testing.assert_array_equal(np.asarray(attack(model, x, y)), x_adv)


def test_cw_eps_only_decides_success(binary_problem, attack):
    model, x, y, diff, margin = binary_problem
    distance = margin / np.linalg.norm(diff)
    eps = float(np.median(distance))
    x_adv = np.asarray(attack(model, x, y, eps=eps))
    far, near = distance > eps * 1.01, distance < eps / 1.01
    assert far.any() and near.any()
    np.testing.assert_array_equal(x_adv[far], x[far])
    assert np.all(np.linalg.norm(x_adv - x, axis=1) <= eps + 1e-6)
    assert np.all(np.argmax(model(x_adv[near]), axis=1) != y[near])
    norms = np.asarray(attack.perturbation_norms(model, x, x_adv, y))
    assert np.all(np.isinf(norms[far]))
    np.testing.assert_allclose(norms[near], distance[near], rtol=1e-3)
    np.testing.assert_array_equal(np.asarray(attack(model, x, y, eps=0.0)), x)


def test_cw_jit_compile_gives_the_same_result(binary_problem, attack):
    model, x, y, _, _ = binary_problem
    plain = np.asarray(attack(model, x, y))
    jitted = CarliniWagnerL2(jit_compile=True)(model, x, y)
    np.testing.assert_allclose(np.asarray(jitted), plain, atol=1e-5)


def test_cw_returns_misclassified_samples_unchanged(binary_problem, attack):
    model, x, y, _, _ = binary_problem
    x_adv = np.asarray(attack(model, x, 1 - y))
    np.testing.assert_array_equal(x_adv, x)
    norms = attack.perturbation_norms(model, x, x_adv, 1 - y)
    np.testing.assert_array_equal(np.asarray(norms), 0.0)


def test_cw_confidence_moves_past_the_boundary(binary_problem):
    model, x, y, diff, margin = binary_problem
    kappa = 0.5
    attack = CarliniWagnerL2(confidence=kappa, max_iterations=300)
    x_adv = np.asarray(attack(model, x, y))
    logits = np.asarray(model(x_adv))
    rows = np.arange(len(y))
    assert np.all(logits[rows, 1 - y] - logits[rows, y] >= kappa - 1e-4)
    np.testing.assert_allclose(
        np.linalg.norm(x_adv - x, axis=1),
        (margin + kappa) / np.linalg.norm(diff),
        rtol=5e-3,
    )


@pytest.mark.parametrize("targeted", [False, True])
def test_cw_success_on_the_hadamard_model(targeted, hadamard_problem):
    model, _, x, y, targets = hadamard_problem
    attack = CarliniWagnerL2(
        eps=0.4, targeted=targeted, binary_search_steps=5, max_iterations=100
    )
    x_adv = np.asarray(attack(model, x, targets if targeted else y))
    predicted = np.argmax(model(x_adv), axis=1)
    success = predicted == targets if targeted else predicted != y
    assert success.mean() > 0.9
    assert np.all(np.linalg.norm(x_adv - x, axis=1) <= 0.4 + 1e-6)


def test_cw_stays_in_the_value_range_from_the_faces(generic_problem):
    model, _, x, y = generic_problem
    x = np.clip((x - 0.3) * 2.5, 0.0, 1.0)  # many inputs exactly 0 or 1
    x = np.concatenate([x, np.zeros_like(x[:1]), np.ones_like(x[:1])])
    y = np.argmax(np.asarray(model(x)), axis=1)
    attack = CarliniWagnerL2(
        value_range=(0.0, 1.0), binary_search_steps=4, max_iterations=100
    )
    x_adv = np.asarray(attack(model, x, y))
    assert np.all(np.isfinite(x_adv))
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.mean(np.argmax(model(x_adv), axis=1) != y) > 0.8
    # The stateless path (inside a user's traced step) gives the same.
    run = tf.function(lambda x, y: attack.perturb(model, x, y, seed=(1, 2)))
    np.testing.assert_allclose(np.asarray(run(x, y)), x_adv, atol=1e-6)


def test_cw_defaults_fool_binarised_inputs():
    # Pixels exactly 0 or 1 start the tanh variables on its flat tails,
    # where Adam needs hundreds of steps to move them: a round must not
    # end at its first stall check before the loss has ever dropped (with
    # the defaults every round ended there, and x came back unchanged).
    rng = np.random.default_rng(4)
    w = rng.normal(size=(16, 4)).astype("float32")
    model = linear_classifier(w)
    x = (rng.uniform(size=(32, 16)) > 0.5).astype("float32")
    y = np.argmax(x @ w, axis=1)
    norms = {}
    for abort_early in (True, False):
        attack = CarliniWagnerL2(abort_early=abort_early)
        x_adv = np.asarray(attack(model, x, y))
        assert np.all(np.argmax(model(x_adv), axis=1) != y)
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
        norms[abort_early] = np.asarray(
            attack.perturbation_norms(model, x, x_adv, y)
        )
    np.testing.assert_allclose(norms[True], norms[False], rtol=1e-3)
    # Minimal: APGD-L2 needs a radius at least as large to fool them all.
    eps = float(norms[True].max())
    x_apgd = APGD(eps=1.01 * eps, norm="l2", seed=0)(model, x, y)
    assert np.all(np.argmax(model(x_apgd), axis=1) != y)
    x_apgd = APGD(eps=0.9 * eps, norm="l2", seed=0)(model, x, y)
    assert not np.all(np.argmax(model(x_apgd), axis=1) != y)


class _CountCalls(keras.layers.Layer):
    """Identity that counts its forward passes in a variable."""

    def build(self, input_shape):
        self.calls = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="calls"
        )

    def call(self, x):
        self.calls.assign_add(1.0)
        return x


def test_cw_early_abort_ends_stalled_rounds():
    # Already misclassified: the loss is only the distance (about 1e-13
    # at the start, from the tanh round trip), which Adam's normalised
    # steps cannot decrease, so each round ends at its first check after
    # the start (iteration 10 of 100).
    counter = _CountCalls()
    model = keras.Sequential(
        [keras.Input((3,)), counter, keras.layers.Dense(2)]
    )
    model.set_weights(
        [
            np.zeros((), "float32"),
            np.eye(3, 2, dtype="float32"),
            np.array([0.1, 0.0], "float32"),
        ]
    )
    x = np.full((4, 3), 0.7, "float32")
    y = np.ones(4, "int32")  # the model predicts class 0
    passes = {}
    for abort_early in (True, False):
        attack = CarliniWagnerL2(
            binary_search_steps=2, max_iterations=100, abort_early=abort_early
        )
        attack(model, x, y)  # traces (and runs once)
        before = float(counter.calls.numpy())
        np.testing.assert_array_equal(np.asarray(attack(model, x, y)), x)
        passes[abort_early] = float(counter.calls.numpy()) - before
    # One forward pass for the clean check, one per iteration.
    assert passes[False] == 1 + 2 * 100
    assert passes[True] == 1 + 2 * 11


def test_cw_config_round_trip():
    attack = CarliniWagnerL2(
        eps=2.0,
        confidence=0.5,
        learning_rate=0.05,
        binary_search_steps=3,
        max_iterations=10,
        initial_const=0.1,
        abort_early=False,
        value_range=(-1.0, 1.0),
        targeted=True,
        seed=3,
    )
    rebuilt = TestCase().run_serialization_test(attack)
    assert rebuilt.get_config() == attack.get_config()
    assert attack.norm == "l2"
    assert "norm" not in attack.get_config()
    assert CarliniWagnerL2().eps == 1e10


def test_cw_rejects_invalid_arguments():
    for kwargs in (
        {"confidence": -1.0},
        {"learning_rate": 0.0},
        {"binary_search_steps": 0},
        {"max_iterations": 0},
        {"initial_const": 0.0},
        {"eps": -1.0},
    ):
        with pytest.raises(ValueError):
            CarliniWagnerL2(**kwargs)
    with pytest.raises(TypeError):
        CarliniWagnerL2(abort_early="yes")
