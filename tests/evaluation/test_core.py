"""The evaluation core shared by `evaluate_robustness` and the monitor.

One data iterator (validation, copies, one-hot versus sparse labels), one
compiled graph and one definition of robust and worst case: the two entry
points must agree exactly and reject the same faulty inputs.
"""

import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.callbacks import RobustnessMonitor
from keras_adv.evaluation import evaluate_robustness
from keras_adv.evaluation._accounting import robust_masks
from keras_adv.evaluation._attack_set import attack_dict

# Images of height 10 and a 10-class model: one-hot label rows have the
# length of an image's first axis, the case that used to be ambiguous.
SIDE = CLASSES = 10
EPS = 0.02


def image_model():
    """Logits of a fixed linear map of `x - 0.5` (Sequential: has inputs)."""
    init = keras.initializers.GlorotUniform(seed=0)
    return keras.Sequential(
        [
            keras.Input((SIDE, SIDE, 1)),
            keras.layers.Rescaling(1.0, offset=-0.5),
            keras.layers.Flatten(),
            keras.layers.Dense(CLASSES, kernel_initializer=init),
        ]
    )


class Subclassed(keras.Model):
    """The same map without `inputs`: the data layout must be inferred."""

    def __init__(self, dense):
        super().__init__()
        self.dense = dense

    def call(self, x):
        return self.dense(keras.ops.reshape(x - 0.5, (-1, SIDE * SIDE)))


@pytest.fixture(scope="module")
def problem():
    """96 images; labels: the model's predictions, a quarter of them wrong."""
    model = image_model()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(96, SIDE, SIDE, 1)).astype("float32")
    y = np.asarray(model(x)).argmax(axis=1)
    y[::4] = (y[::4] + 1) % CLASSES
    return model, x, y


def seeded_attacks():
    """FGSM and a random-start PGD whose results depend on the seed."""
    return {
        "fgsm": FGSM(eps=EPS),
        "pgd": PGD(eps=EPS, steps=2, step_size=0.002),
    }


def _accuracies(report, eps=EPS):
    return (
        report.clean_accuracy,
        {name: report.accuracy(name, eps) for name in report.attacks},
        report.worst_case(eps),
    )


# ----------------------------------------------- one figure, two doors
@pytest.mark.parametrize("checks", [False, True])
def test_monitor_and_evaluate_robustness_agree_exactly(problem, checks):
    model, x, y = problem
    attacks = seeded_attacks()
    report = evaluate_robustness(
        model,
        (x, y),
        attacks=attacks,
        epsilons=[0.0, EPS],
        batch_size=32,
        checks=checks,
        seed=3,
        verbose=0,
    )
    monitor = RobustnessMonitor(
        (x, y), attacks=attacks, max_samples=len(x), batch_size=32, seed=3
    )
    results = monitor.evaluate(model)
    clean, accuracy, worst = _accuracies(report)
    assert results["clean_accuracy"] == clean == 0.75
    assert results["accuracy"] == accuracy
    assert results["robust_accuracy"] == worst
    assert 0.0 < worst <= min(accuracy.values())
    assert max(accuracy.values()) < clean
    # The same figures come out of one shared graph, traced once.
    assert monitor.tracing_count() == 1


def test_monitor_and_report_name_attacks_with_their_steps(problem, capsys):
    model, x, y = problem
    attacks = seeded_attacks()
    report = evaluate_robustness(
        model, (x, y), attacks, [0.0, EPS], checks=False, verbose=0
    )
    assert "pgd-2 (linf)  " in report.table()
    assert "fgsm (linf)  " in report.table()
    monitor = RobustnessMonitor((x, y), attacks=attacks, verbose=1)
    monitor.set_model(model)
    logs = {}
    capsys.readouterr()
    for epoch in range(2):
        monitor.on_epoch_end(epoch, logs)
    out = capsys.readouterr().out
    assert "fgsm " in out and "pgd-2 " in out and "pgd " not in out
    assert "val_pgd_accuracy" in logs  # the log keys keep the names
    # The worst case is defined once, under the first line.
    assert out.count("robust only if it resists every attack") == 1
    assert out.splitlines()[1].startswith("  (worst case: a sample counts")
    results = monitor.last_results
    grid_title = monitor._summary(results, ".0f")
    assert "pgd-2 " in grid_title


def test_the_seed_reaches_the_random_starts(problem):
    model, x, y = problem
    margins = []
    for seed in (0, 1):
        monitor = RobustnessMonitor(
            (x, y), attacks=seeded_attacks(), batch_size=32, seed=seed
        )
        margins.append(monitor.evaluate(model)["adv_margin"]["pgd"])
    assert not np.allclose(margins[0], margins[1])
    again = RobustnessMonitor(
        (x, y), attacks=seeded_attacks(), batch_size=32, seed=1
    )
    np.testing.assert_array_equal(
        again.evaluate(model)["adv_margin"]["pgd"], margins[1]
    )


def test_robust_and_worst_case_definitions():
    clean = np.array([True, True, True, False])
    robust, worst = robust_masks(
        clean,
        {"a": np.array([True, False, True, True]), "b": [True, True, 0, 1]},
    )
    # A sample wrong clean is never robust, whatever the attack did.
    assert robust["a"].tolist() == [True, False, True, False]
    assert robust["b"].tolist() == [True, True, False, False]
    assert worst.tolist() == [True, False, False, False]


def _callable_loss_figures(loss, log_dir):
    """PGD's figures on a 4-class Dense model, through both doors."""
    rng = np.random.default_rng(0)
    init = keras.initializers.GlorotUniform(seed=1)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, kernel_initializer=init)]
    )
    model.compile(
        keras.optimizers.SGD(0.0),  # weights stay fixed
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = rng.uniform(size=(40, 6)).astype("float32")
    y = np.asarray(model(x)).argmax(axis=1)
    y[::5] = (y[::5] + 1) % 4
    attack = PGD(eps=0.1, steps=3, loss=loss)
    report = evaluate_robustness(
        model, (x, y), attacks=[attack], epsilons=[0.0, 0.1], verbose=0
    )
    monitor = RobustnessMonitor((x, y), attacks=[attack], log_dir=log_dir)
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
    return (
        report.clean_accuracy,
        report.accuracy("pgd", 0.1),
        report.worst_case(0.1),
        report.attacks["pgd"]["config"]["steps"],
        report.warnings,
        history.history["val_pgd_accuracy"],
        monitor.last_results["adv_margin"]["pgd"],
    )


def test_an_attack_with_a_lambda_loss_runs_through_both_doors(tmp_path):
    # A lambda cannot be serialised, but serialisation is only for saving:
    # evaluation, the monitor (with its TensorBoard setup text) and their
    # shared graph cache take callables by identity. The figures are those
    # of loss="ce", the same cross-entropy, with the same (default) seeds.
    ce = _callable_loss_figures("ce", tmp_path / "ce")
    lam = _callable_loss_figures(
        lambda y, z: keras.losses.sparse_categorical_crossentropy(
            y, z, from_logits=True
        ),
        tmp_path / "lambda",
    )
    assert lam[:6] == ce[:6]
    np.testing.assert_allclose(lam[6], ce[6], atol=1e-5)
    clean, pgd, worst, steps, warnings, monitored = ce[:6]
    assert 0.0 < pgd == worst == monitored[0] < clean == 0.8
    assert steps == 3 and warnings == []


# ------------------------------------------------------- copies, not views
@pytest.mark.parametrize("max_samples", [50, 96])
def test_monitor_keeps_a_copy_of_the_callers_arrays(problem, max_samples):
    model, x, y = problem
    x, y = x.copy(), y.copy()
    monitor = RobustnessMonitor(
        (x, y), attacks=seeded_attacks(), max_samples=max_samples
    )
    before = monitor.evaluate(model)
    x[:] = 0.0
    y[:] = 0
    np.testing.assert_array_equal(monitor.x, problem[1][:max_samples])
    np.testing.assert_array_equal(monitor.y, problem[2][:max_samples])
    assert not np.shares_memory(monitor.x, x)
    assert monitor.evaluate(model)["accuracy"] == before["accuracy"]


# --------------------------------------------------------- faulty inputs
def _evaluate_fast(model, data):
    return evaluate_robustness(
        model, data, epsilons=[0], checks=False, verbose=0
    )


def test_uint8_inputs_are_refused_even_at_eps_zero(problem):
    model, x, y = problem
    images = (255 * x).astype("uint8")
    with pytest.raises(TypeError, match="floating-point.*uint8"):
        _evaluate_fast(model, (images, y))
    with pytest.raises(TypeError, match="uint8"):
        _evaluate_fast(model, tf.data.Dataset.from_tensor_slices((images, y)))
    with pytest.raises(TypeError, match="floating-point"):
        RobustnessMonitor((images, y))


def test_nan_inputs_are_refused_even_at_eps_zero(problem):
    model, x, y = problem
    x = x.copy()
    x[70, 3, 4, 0] = np.nan  # in the third batch of 32
    with pytest.raises(ValueError, match="NaN"):
        _evaluate_fast(model, (x, y))
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    with pytest.raises(ValueError, match="NaN"):
        _evaluate_fast(model, dataset)
    # The monitor refuses them at construction, not at the first epoch.
    with pytest.raises(ValueError, match="validation_data.*NaN"):
        RobustnessMonitor((x, y), attacks=seeded_attacks())
    with pytest.raises(ValueError, match="NaN"):
        RobustnessMonitor(dataset, attacks=seeded_attacks())


def test_labels_must_be_below_the_number_of_classes(problem):
    model, x, y = problem
    y = y.copy()
    y[80] = CLASSES
    with pytest.raises(ValueError, match="model's classes"):
        _evaluate_fast(model, (x, y))
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with pytest.raises(ValueError, match="model's classes"):
        _evaluate_fast(model, dataset)
    monitor = RobustnessMonitor((x, y), attacks=seeded_attacks())
    with pytest.raises(ValueError, match="model's classes"):
        monitor.evaluate(model)
    one_hot = np.eye(CLASSES + 1, dtype="float32")[y]
    with pytest.raises(ValueError, match="One-hot labels have 11 classes"):
        _evaluate_fast(model, (x, one_hot))


# ------------------------------------------ one-hot rows as long as images
def test_one_hot_and_sparse_labels_agree_when_classes_equal_height(problem):
    model, x, y = problem
    one_hot = np.eye(CLASSES, dtype="float32")[y]

    def accuracies(data):
        # Deterministic attacks: the figures do not depend on the batching.
        attacks = {
            "fgsm": FGSM(eps=EPS),
            "pgd": PGD(eps=EPS, steps=3, random_start=False),
        }
        return _accuracies(
            evaluate_robustness(
                model, data, attacks, [EPS], checks=False, verbose=0
            )
        )

    expected = accuracies((x, y))
    datasets = [
        (x, one_hot),
        tf.data.Dataset.from_tensor_slices((x, one_hot)).batch(32),
        tf.data.Dataset.from_tensor_slices((x, y)),
        tf.data.Dataset.from_tensors((x, y)),
        # A static batch dimension of 10: the image height and the classes.
        tf.data.Dataset.from_tensor_slices((x, y)).batch(
            SIDE, drop_remainder=True
        ),
    ]
    for data in datasets:
        n = 90 if data is datasets[-1] else len(x)
        target = expected if n == len(x) else accuracies((x[:n], y[:n]))
        assert accuracies(data) == target
        monitor = RobustnessMonitor(data, attacks=seeded_attacks())
        np.testing.assert_array_equal(monitor.y, y[:n])
        np.testing.assert_array_equal(monitor.x, x[:n])


@pytest.mark.parametrize("subclassed", [False, True])
def test_unbatched_one_hot_dataset_is_refused_clearly(problem, subclassed):
    model, x, y = problem
    if subclassed:
        model = Subclassed(model.layers[-1])
    one_hot = np.eye(CLASSES, dtype="float32")[y]
    # Elements are x (10, 10, 1) and y (10,): read as batches, they would
    # be 10 "samples" of shape (10, 1) with the labels of one image.
    data = tf.data.Dataset.from_tensor_slices((x, one_hot))
    with pytest.raises(ValueError, match="single samples with one-hot"):
        _evaluate_fast(model, data)
    with pytest.raises(ValueError, match="single samples with one-hot"):
        RobustnessMonitor(data, attacks=seeded_attacks())


# ---------------------------------------------------------------- log_dir
def _unwritable_directory(tmp_path):
    """A directory this process cannot write to, or None."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    candidates = [str(locked), "/proc"]  # root writes anywhere but /proc
    for path in candidates:
        try:
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError:
            return path
    return None


def test_log_dir_problems_raise_at_construction(problem, tmp_path):
    _, x, y = problem
    data = (x[:8], y[:8])
    a_file = tmp_path / "events.txt"
    a_file.write_text("not a directory")
    for log_dir in (a_file, a_file / "logs"):
        with pytest.raises(ValueError, match="log_dir.*existing file"):
            RobustnessMonitor(data, log_dir=log_dir)
    run_is_a_file = tmp_path / "logs"
    run_is_a_file.mkdir()
    (run_is_a_file / "robustness").write_text("")
    with pytest.raises(ValueError, match="log_dir"):
        RobustnessMonitor(data, log_dir=run_is_a_file)
    try:
        locked = _unwritable_directory(tmp_path)
        if locked is None:
            pytest.skip("every directory is writable here")
        with pytest.raises(ValueError, match="log_dir.*writable"):
            RobustnessMonitor(data, log_dir=os.path.join(locked, "logs"))
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_a_new_log_dir_is_accepted_and_not_created_early(problem, tmp_path):
    _, x, y = problem
    log_dir = tmp_path / "runs" / "one"
    monitor = RobustnessMonitor((x[:8], y[:8]), log_dir=log_dir)
    assert monitor.log_dir == str(log_dir)
    assert not (tmp_path / "runs").exists()


def test_attacks_by_name_including_autoattack():
    attacks = attack_dict(["pgd", "autoattack"])
    assert list(attacks) == ["pgd", "autoattack"]
    assert type(attacks["autoattack"]).__name__ == "AutoAttack"
    assert list(attack_dict("apgd")) == ["apgd"]
    with pytest.raises(ValueError, match="attacks"):
        attack_dict("deepfool")


def test_evaluate_robustness_with_autoattack_has_no_masking_false_alarm():
    from keras_adv.evaluation import evaluate_robustness

    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    x = rng.uniform(0.3, 0.7, size=(32, 8)).astype("float32")
    y = np.argmax(np.asarray(model(x)), axis=1)
    report = evaluate_robustness(
        model,
        (x, y),
        attacks=["fgsm", "autoattack"],
        epsilons=[0.0, 0.05],
        verbose=0,
    )
    aa = report.attacks["autoattack"]["accuracy"]
    fgsm = report.attacks["fgsm"]["accuracy"]
    assert aa[-1] <= fgsm[-1] + 1e-9  # the ensemble is never weaker
    assert not any("multistep_weaker" in w for w in report.warnings)
