"""GeneratorAttack: x + G(x) projected, everywhere attacks are used."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv import cli
from keras_adv.attacks import GeneratorAttack
from keras_adv.testing import linear_classifier

FEATURES = 4
BIAS = np.array([2.0, -0.5, 0.1, -3.0], "float32")
EPS = 0.3


def constant_generator(bias=BIAS, eps=EPS, features=FEATURES):
    """G(x) = eps * tanh(bias): a constant perturbation, known exactly."""
    x = keras.Input((features,))
    raw = keras.layers.Dense(
        features,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(bias),
    )(x)
    return keras.Model(x, keras_adv.layers.PerturbationBound(eps)(raw))


def conditioned_generator(table, eps=EPS):
    """G([x, onehot(t)]) = eps * tanh(table[t])."""
    x = keras.Input((FEATURES,))
    t = keras.Input((table.shape[0],))
    raw = keras.layers.Dense(FEATURES, use_bias=False, name="table")(t)
    zero = keras.layers.Dense(FEATURES, kernel_initializer="zeros")(x)
    raw = keras.layers.Add()([raw, zero])
    model = keras.Model([x, t], keras_adv.layers.PerturbationBound(eps)(raw))
    model.get_layer("table").set_weights([table])
    return model


def model():
    # Logits: class 1 iff x0 - x3 > 0.
    weights = np.array([[-1, 1], [0, 0], [0, 0], [1, -1]], "float32")
    return linear_classifier(weights)


X = np.array(
    [[0.5, 0.5, 0.5, 0.5], [0.9, 0.0, 1.0, 0.2], [0.1, 0.95, 0.0, 0.6]],
    "float32",
)


def test_adversarial_example_is_the_projected_perturbation():
    attack = GeneratorAttack(constant_generator())
    delta = EPS * np.tanh(BIAS)
    x_adv = np.asarray(attack(model(), X, np.array([0, 1, 0])))
    np.testing.assert_allclose(x_adv, np.clip(X + delta, 0, 1), atol=1e-6)
    # A smaller radius projects the same perturbation onto its ball.
    small = np.asarray(attack(model(), X, np.array([0, 1, 0]), eps=0.1))
    np.testing.assert_allclose(
        small, np.clip(X + np.clip(delta, -0.1, 0.1), 0, 1), atol=1e-6
    )
    zero = np.asarray(attack(model(), X, np.array([0, 1, 0]), eps=0.0))
    np.testing.assert_array_equal(zero, X)


def test_l2_projection():
    attack = GeneratorAttack(constant_generator(), eps=0.1, norm="l2")
    x = np.full((1, FEATURES), 0.5, "float32")
    delta = EPS * np.tanh(BIAS)
    x_adv = np.asarray(attack(model(), x))
    expected = x + delta * 0.1 / np.linalg.norm(delta)
    np.testing.assert_allclose(x_adv, expected, atol=1e-6)


def test_targeted_uses_the_targets_as_the_generator_condition():
    table = np.array([[3.0, 0, 0, -3.0], [-3.0, 0, 0, 3.0]], "float32")
    attack = GeneratorAttack(conditioned_generator(table), targeted=True)
    targets = np.array([1, 0, 1])
    x_adv = np.asarray(attack(model(), X, targets))
    expected = np.clip(X + EPS * np.tanh(table[targets]), 0, 1)
    np.testing.assert_allclose(x_adv, expected, atol=1e-6)
    with pytest.raises(ValueError, match="`targeted`"):
        GeneratorAttack(constant_generator(), targeted=True)


def test_settings_come_from_an_advgan():
    gen = constant_generator(eps=0.2)
    disc = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    gan = keras_adv.models.AdvGAN(gen, disc, model(), eps=0.2, norm="l2")
    attack = GeneratorAttack(gan)
    assert attack.generator is gen
    assert (attack.eps, attack.norm, attack.targeted) == (0.2, "l2", False)
    assert isinstance(gan.attack(), GeneratorAttack)


def test_config_from_a_path_reproduces_the_attack(tmp_path):
    path = str(tmp_path / "g.keras")
    constant_generator().save(path)
    attack = GeneratorAttack(path, eps=0.25)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(attack)))
    rebuilt = keras.saving.deserialize_keras_object(config)
    assert rebuilt.get_config() == attack.get_config()
    np.testing.assert_allclose(
        rebuilt(model(), X, np.array([0, 1, 0])),
        attack(model(), X, np.array([0, 1, 0])),
    )
    # An in-memory generator: the architecture only (JSON-safe).
    config = GeneratorAttack(constant_generator()).get_config()
    json.dumps(config)
    rebuilt = GeneratorAttack.from_config(config)
    assert rebuilt.generator.count_params() == FEATURES * FEATURES + FEATURES


def test_invalid_generator():
    with pytest.raises(TypeError, match="`generator`"):
        GeneratorAttack(lambda x: x)


def test_evaluate_robustness_matches_a_direct_computation():
    clf = model()
    x = np.random.default_rng(0).uniform(size=(40, FEATURES)).astype("float32")
    y = np.asarray(clf(x)).argmax(-1)
    attack = GeneratorAttack(constant_generator())
    report = keras_adv.evaluation.evaluate_robustness(
        clf,
        (x, y),
        attacks={"generator": attack},
        epsilons=[0.0, 0.1, 0.3],
        checks=False,
        verbose=0,
    )
    delta = EPS * np.tanh(BIAS)
    for eps in (0.1, 0.3):
        x_adv = np.clip(x + np.clip(delta, -eps, eps), 0, 1)
        expected = np.mean(np.asarray(clf(x_adv)).argmax(-1) == y)
        assert report.accuracy("generator", eps) == pytest.approx(expected)
    assert report.accuracy("generator", 0.3) < 1.0


def test_robustness_monitor_and_adversarial_training():
    clf = model()
    clf.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = np.random.default_rng(1).uniform(size=(64, FEATURES)).astype("float32")
    y = (x[:, 0] > x[:, 3]).astype("int64")
    generator = constant_generator()
    attack = GeneratorAttack(generator)
    monitor = keras_adv.callbacks.RobustnessMonitor(
        (x, y), attacks={"generator": attack}, max_samples=32
    )
    training = keras_adv.callbacks.AdversarialTraining(attack)
    # The training copy shares the generator (weights are not config).
    assert training.objective.train_attack.generator is generator
    history = clf.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        verbose=0,
        callbacks=[training, monitor],
    )
    assert "adv_accuracy" in history.history
    assert "val_generator_accuracy" in history.history


def test_attack_by_name_and_cli(tmp_path, capsys):
    mnist = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model_path = tmp_path / "m.keras"
    mnist.save(model_path)
    gen = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(1, 3, padding="same"),
            keras_adv.layers.PerturbationBound(0.3),
        ]
    )
    gen_path = tmp_path / "gen.keras"
    gen.save(gen_path)
    attacks = keras_adv.evaluation._attack_set.attack_dict(
        f"generator:{gen_path}"
    )
    assert list(attacks) == ["generator"]
    assert isinstance(attacks["generator"], GeneratorAttack)
    out = tmp_path / "report"
    code = cli.main(
        ["evaluate", str(model_path), "--attack", f"fgsm,generator:{gen_path}"]
        + ["--eps", "0.3", "--max-samples", "32", "--no-checks", "-q"]
        + ["--out", str(out)]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["attacks"]) == ["fgsm", "generator"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(
            ["evaluate", str(model_path), "--attack", "generator:missing.keras"]
            + ["--max-samples", "8", "-q", "--out", str(out)]
        )
    assert exit_info.value.code == 2
    assert "generator:missing.keras" in capsys.readouterr().err


def test_speed_bench_runs_and_traces_once(capsys):
    import runpy
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench" / "advgan_speed.py"
    argv = sys.argv
    sys.argv = ["advgan_speed.py", "--batch", "8", "--repeats", "1"]
    sys.argv += ["--pgd-steps", "2"]
    try:
        runpy.run_path(str(bench), run_name="__main__")
    finally:
        sys.argv = argv
    out = capsys.readouterr().out
    assert "speed-up generator vs PGD-2" in out
    assert out.count("traces 1)") == 2


def test_generator_output_of_another_shape_names_both_shapes(tmp_path):
    # A (batch, 4) perturbation for (batch, 8, 8, 1) inputs would broadcast
    # into x_adv of shape (8, 8, 8, 4).
    flat = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    message = r"x has shape \(None, 8, 8, 1\).*output shape \(None, 4\)"
    with pytest.raises(ValueError, match=message):
        GeneratorAttack(flat)
    path = tmp_path / "flat.keras"
    flat.save(path)
    with pytest.raises(ValueError, match=message):
        GeneratorAttack(str(path))

    class Subclassed(keras.Model):
        """No static shapes: the check runs at the first call."""

        def __init__(self):
            super().__init__()
            self.flatten = keras.layers.Flatten()
            self.dense = keras.layers.Dense(4)

        def call(self, x):
            return self.dense(self.flatten(x))

    clf = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    attack = GeneratorAttack(Subclassed())
    x = np.full((8, 8, 8, 1), 0.5, "float32")
    with pytest.raises(ValueError, match=r"\(8, 8, 8, 1\).*\(8, 4\)"):
        attack(clf, x)


def test_untargeted_conditioned_generator_aims_at_the_runner_up_class():
    # Conditioning on the true label would aim each perturbation at the
    # class the sample already has; the nearest rival is the target.
    table = np.array(
        [[3.0, 0, 0, -3.0], [-3.0, 0, 0, 3.0], [0, 3.0, -3.0, 0]], "float32"
    )
    weights = np.array(
        [[1, 0, 0.5], [0, 0.2, 1], [0, 0, 0], [0.3, 1, 0]], "float32"
    )
    clf = linear_classifier(weights)
    attack = GeneratorAttack(conditioned_generator(table))
    assert attack.conditioned and not attack.targeted
    logits = X @ weights
    y = logits.argmax(1)
    runner_up = np.argsort(logits, axis=1)[:, -2]
    assert np.all(runner_up != y)
    expected = np.clip(X + EPS * np.tanh(table[runner_up]), 0, 1)
    np.testing.assert_allclose(attack(clf, X, y), expected, atol=1e-6)
    np.testing.assert_allclose(attack(clf, X), expected, atol=1e-6)


def test_targets_outside_the_generators_classes_fail():
    # A target the generator has no condition for would be an all-zero
    # one-hot row. The model has 4 classes, the generator 2.
    table = np.array([[3.0, 0, 0, -3.0], [-3.0, 0, 0, 3.0]], "float32")
    clf = linear_classifier(np.eye(4, dtype="float32"))
    attack = GeneratorAttack(conditioned_generator(table), targeted=True)
    np.testing.assert_allclose(
        attack(clf, X, np.array([1, 0, 1])),
        np.clip(X + EPS * np.tanh(table[[1, 0, 1]]), 0, 1),
        atol=1e-6,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="`targets`"):
        attack(clf, X, np.array([1, 3, 0]))
