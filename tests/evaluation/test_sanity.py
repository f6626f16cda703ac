"""Gradient-masking checks: they fire on masked models, stay silent else."""

import keras
import pytest

import keras_adv
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.evaluation import evaluate_robustness
from keras_adv.evaluation import sanity

EPSILONS = [0.0, 0.1, 0.3]


class Round(keras.layers.Layer):
    """Non-differentiable input quantisation: its gradient is zero."""

    def call(self, x):
        return keras.ops.round(x)


@pytest.fixture(scope="module")
def data():
    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    return x_train, y_train, x_test[:200], y_test[:200]


@pytest.fixture(scope="module")
def weights(data):
    """Weights of a softmax regression trained on the subset."""
    x_train, y_train, _, _ = data
    keras.utils.set_random_seed(0)
    model = _head(keras.layers.Dense(10))
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train, epochs=2, batch_size=128, verbose=0)
    return model.get_weights()


def _head(dense, pre=()):
    return keras.Sequential(
        [keras.Input((28, 28, 1)), *pre, keras.layers.Flatten(), dense]
    )


def _evaluate(model, data, epsilons=EPSILONS, **kwargs):
    _, _, x, y = data
    return evaluate_robustness(
        model, (x, y), epsilons=epsilons, verbose=0, **kwargs
    )


def _kinds(report):
    return sorted({w.split(":")[0] for w in report.warnings})


def test_silent_on_a_normal_model(weights, data):
    model = _head(keras.layers.Dense(10))
    model.set_weights(weights)
    report = _evaluate(model, data)
    assert report.clean_accuracy > 0.8
    assert report.warnings == []
    assert report.checks["output_kind"] == "logits"


def test_silent_on_a_normal_softmax_model(weights, data):
    model = _head(keras.layers.Dense(10, activation="softmax"))
    model.set_weights(weights)
    report = _evaluate(model, data)
    assert report.checks["output_kind"] == "probabilities"
    assert report.checks["saturated_share"] < 0.1
    assert report.warnings == []


def test_rounding_input_layer_is_flagged(weights, data):
    model = _head(keras.layers.Dense(10), pre=[Round()])
    model.set_weights(weights)
    report = _evaluate(model, data)
    kinds = _kinds(report)
    assert "zero_gradients" in kinds
    assert "unbounded_not_zero" in kinds
    assert report.checks["zero_gradient_share"] == 1.0
    assert report.checks["unbounded_accuracy"] > 0.1
    # FGSM cannot move a single sample; random noise does better.
    assert report.attacks["fgsm"]["max_norm"] == [0.0, 0.0, 0.0]
    assert "noise_beats_attack" in kinds
    assert "WARNING(S)" in report.table()


def test_saturated_softmax_is_flagged(weights, data):
    # Probabilities of a model whose logits are scaled by 1000: the
    # softmax rounds to one-hot in float32 and its gradients vanish.
    model = _head(keras.layers.Dense(10, activation="softmax"))
    model.set_weights([1000.0 * w for w in weights])
    report = _evaluate(model, data, attacks=[FGSM(), PGD(steps=5, seed=0)])
    assert report.checks["output_kind"] == "probabilities"
    assert report.checks["saturated_share"] > 0.5
    kinds = _kinds(report)
    assert "probability_outputs" in kinds
    assert "zero_gradients" in kinds


def test_sigmoid_outputs_are_flagged(weights, data):
    model = _head(keras.layers.Dense(10, activation="sigmoid"))
    model.set_weights(weights)
    report = _evaluate(model, data, attacks=FGSM(), epsilons=[0.1])
    assert report.checks["output_kind"] == "bounded"
    assert "probability_outputs" in _kinds(report)


def test_softmax_treated_as_logits_is_refused(weights, data):
    model = _head(keras.layers.Dense(10, activation="softmax"))
    model.set_weights(weights)
    with pytest.raises(ValueError, match="from_logits"):
        _evaluate(model, data, attacks=FGSM(from_logits=True))


# ------------------------------------------- the rules on synthetic numbers
def _numbers(fgsm, pgd, n=1000, pgd_steps=10):
    return {
        "num_samples": n,
        "epsilons": [0.0, 0.1, 0.2],
        "attacks": {
            "fgsm": {"norm": "linf", "steps": 1, "accuracy": fgsm},
            "pgd": {"norm": "linf", "steps": pgd_steps, "accuracy": pgd},
        },
    }


def test_rules_multistep_weaker_and_accuracy_rises():
    warnings = sanity.gradient_masking_warnings(
        _numbers([0.9, 0.5, 0.3], [0.9, 0.6, 0.7]), {}
    )
    kinds = [w.split(":")[0] for w in warnings]
    assert kinds.count("multistep_weaker") == 1
    assert kinds.count("accuracy_rises") == 1
    assert "pgd" in warnings[-1] and "eps=0.2" in warnings[-1]


def test_rules_tolerate_sampling_noise():
    n = 1000
    tol = sanity.tolerance(n)
    assert tol == pytest.approx(0.011)
    small = 0.9 * tol
    warnings = sanity.gradient_masking_warnings(
        _numbers([0.9, 0.5, 0.3], [0.9, 0.5 + small, 0.3 + small], n=n),
        {
            "noise_accuracy": {"linf": [0.9, 0.5, 0.3]},
            "unbounded_accuracy": 0.02,
            "unbounded_samples": 256,
            "unbounded_eps": 1.0,
            "zero_gradient_share": 0.1,
            "output_kind": "probabilities",
            "saturated_share": 0.1,
        },
    )
    assert warnings == []


def test_rules_noise_and_unbounded():
    warnings = sanity.gradient_masking_warnings(
        _numbers([0.9, 0.5, 0.3], [0.9, 0.4, 0.2]),
        {
            "noise_accuracy": {"linf": [0.9, 0.3, 0.1]},
            "unbounded_accuracy": 0.05,
            "unbounded_samples": 256,
            "unbounded_eps": 1.0,
        },
    )
    kinds = [w.split(":")[0] for w in warnings]
    assert kinds == ["unbounded_not_zero"] + 2 * ["noise_beats_attack"]
    assert "5.0%" in warnings[0]
