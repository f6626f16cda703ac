"""Tests of RobustnessMonitor: logs, order, TensorBoard events, tracing."""

import glob
import os
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)
from tensorboard.plugins.custom_scalar import layout_pb2

import keras_adv
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.callbacks import RobustnessMonitor
from keras_adv.evaluation import robustness_grid
from keras_adv.testing import linear_classifier
from keras_adv.testing import small_cnn

# A 1-feature linear model with logits (x, -x): class 0 iff x > 0. An L-inf
# attack of radius eps lowers the margin 2|x| by 2 eps, so a sample
# survives iff |x| > eps (the value range is wide enough never to clip).
RANGE = (-2.0, 2.0)
X_LINE = np.linspace(-0.95, 0.95, 20).astype("float32")[:, None]  # |x|=.05..
Y_LINE = (X_LINE[:, 0] < 0).astype("int64")


def survive(eps):
    return float(np.mean(np.abs(X_LINE[:, 0]) > eps))


def line_model():
    model = linear_classifier([[1.0, -1.0]])
    model.compile(
        keras.optimizers.SGD(learning_rate=0.0),  # weights stay fixed
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def line_attacks():
    return {
        "fgsm": FGSM(eps=0.2, value_range=RANGE),
        "pgd": PGD(eps=0.5, steps=10, value_range=RANGE, seed=0),
    }


class Recorder(keras.callbacks.Callback):
    """Copies the epoch logs it sees."""

    def __init__(self):
        super().__init__()
        self.logs = []

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))


@pytest.fixture(scope="module")
def line_run(tmp_path_factory):
    """4 epochs, monitor every 2nd, with the callbacks that read its keys."""
    tmp = tmp_path_factory.mktemp("line")
    monitor = RobustnessMonitor(
        (X_LINE, Y_LINE), attacks=line_attacks(), freq=2, batch_size=8
    )
    recorder = Recorder()
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_robust_accuracy", mode="max", patience=10
    )
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp / "best.keras"),
        monitor="val_robust_accuracy",
        mode="max",
        save_best_only=True,
    )
    model = line_model()
    with warnings.catch_warnings():
        # EarlyStopping and ModelCheckpoint warn on epochs 1 and 3, where
        # the monitor does not run and its keys are absent (by design).
        warnings.simplefilter("ignore", UserWarning)
        history = model.fit(
            X_LINE,
            Y_LINE,
            epochs=4,
            batch_size=10,
            verbose=0,
            callbacks=[monitor, recorder, stopper, checkpoint],
        )
    return monitor, recorder, stopper, checkpoint, history, tmp


def test_logs_hold_closed_form_accuracies(line_run):
    _, _, _, _, history, _ = line_run
    assert history.history["val_fgsm_accuracy"] == [survive(0.2)] * 2
    assert history.history["val_pgd_accuracy"] == [survive(0.5)] * 2
    # Worst case: the stronger attack decides, 5 of 20 samples... x 2.
    assert history.history["val_robust_accuracy"] == [survive(0.5)] * 2
    assert survive(0.2) == 0.8 and survive(0.5) == 0.5


def test_runs_on_every_nth_epoch_only_without_stale_keys(line_run):
    _, recorder, _, _, history, _ = line_run
    has_key = ["val_robust_accuracy" in logs for logs in recorder.logs]
    assert has_key == [False, True, False, True]  # epochs 2 and 4
    assert len(history.history["loss"]) == 4
    for logs in recorder.logs[1::2]:
        for key in ("val_robust_accuracy", "val_fgsm_accuracy"):
            assert type(logs[key]) is float


def test_early_stopping_and_checkpoint_see_the_key(line_run):
    _, _, stopper, checkpoint, _, tmp = line_run
    assert stopper.best == survive(0.5)
    assert checkpoint.best == survive(0.5)
    assert os.path.exists(tmp / "best.keras")


def test_evaluation_graph_traced_once(line_run):
    monitor = line_run[0]
    # Two evaluations, batches of 8, 8 and 4 samples: one trace.
    assert monitor.tracing_count() == 1


def test_eps_change_does_not_retrace():
    model = line_model()
    attacks = line_attacks()
    monitor = RobustnessMonitor((X_LINE, Y_LINE), attacks=attacks)
    first = monitor.evaluate(model)
    attacks["fgsm"].eps = 0.4
    attacks["pgd"].eps = 0.0
    second = monitor.evaluate(model)
    assert monitor.tracing_count() == 1
    assert first["accuracy"] == {"fgsm": survive(0.2), "pgd": survive(0.5)}
    assert second["accuracy"] == {"fgsm": survive(0.4), "pgd": 1.0}
    assert second["robust_accuracy"] == survive(0.4)
    assert second["clean_accuracy"] == 1.0
    np.testing.assert_allclose(second["norm"]["fgsm"], 0.4, atol=1e-6)
    np.testing.assert_allclose(second["l2_norm"]["fgsm"], 0.4, atol=1e-6)
    # Margins: clean 2|x|, under FGSM 2(|x| - eps).
    np.testing.assert_allclose(
        second["clean_margin"], 2 * np.abs(X_LINE[:, 0]), atol=1e-5
    )
    np.testing.assert_allclose(
        second["adv_margin"]["fgsm"],
        2 * (np.abs(X_LINE[:, 0]) - 0.4),
        atol=1e-5,
    )


def test_variable_eps_and_probability_outputs():
    # log-softmax differences equal logit differences: same closed form.
    model = linear_classifier([[1.0, -1.0]], softmax=True)
    eps = tf.Variable(0.2)
    attack = FGSM(eps=eps, value_range=RANGE)
    monitor = RobustnessMonitor((X_LINE, Y_LINE), attacks=attack)
    assert monitor.evaluate(model)["robust_accuracy"] == survive(0.2)
    eps.assign(0.6)
    results = monitor.evaluate(model)
    assert results["accuracy"] == {"fgsm": survive(0.6)}
    assert monitor.tracing_count() == 1
    np.testing.assert_allclose(
        results["clean_margin"], 2 * np.abs(X_LINE[:, 0]), atol=1e-4
    )


def test_history_passed_before_the_monitor_still_gets_the_values():
    history = keras.callbacks.History()
    monitor = RobustnessMonitor((X_LINE, Y_LINE), attacks=line_attacks())
    line_model().fit(
        X_LINE, Y_LINE, epochs=2, verbose=0, callbacks=[history, monitor]
    )
    assert history.history["val_robust_accuracy"] == [survive(0.5)] * 2
    assert history.history["val_fgsm_accuracy"] == [survive(0.2)] * 2


def test_no_batch_hooks():
    for hook in (
        "on_batch_begin",
        "on_batch_end",
        "on_train_batch_begin",
        "on_train_batch_end",
        "on_test_batch_begin",
        "on_test_batch_end",
        "on_predict_batch_begin",
        "on_predict_batch_end",
    ):
        assert getattr(RobustnessMonitor, hook) is getattr(
            keras.callbacks.Callback, hook
        ), hook


# ------------------------------------------------------------ MNIST + TB
@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """A small CNN, 2 epochs, monitor + Keras TensorBoard in one log_dir."""
    log_dir = str(tmp_path_factory.mktemp("mnist") / "logs")
    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    model = small_cnn(width=4, seed=0)
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    attacks = {"fgsm": FGSM(eps=0.1), "pgd": PGD(eps=0.1, steps=3, seed=0)}
    monitor = RobustnessMonitor(
        (x_test, y_test),
        attacks=attacks,
        max_samples=60,
        batch_size=32,
        images=4,
        log_dir=log_dir,
    )
    history = model.fit(
        x_train[:512],
        y_train[:512],
        batch_size=64,
        epochs=2,
        verbose=0,
        callbacks=[monitor, keras.callbacks.TensorBoard(log_dir)],
    )
    return model, monitor, history, log_dir, (x_test[:60], y_test[:60])


def _events(path):
    files = glob.glob(os.path.join(path, "events.out.tfevents.*"))
    assert files, path
    acc = EventAccumulator(
        path, size_guidance={"tensors": 0, "images": 0, "histograms": 0}
    )
    acc.Reload()
    return acc


def _values(acc, tag):
    return [(e.step, tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]


def test_fgsm_accuracy_equals_a_direct_computation(mnist_run):
    model, monitor, history, _, (x, y) = mnist_run
    x_adv = FGSM(eps=0.1)(model, x, y)
    clean = np.argmax(np.asarray(model(x)), axis=1) == y
    adv = np.argmax(np.asarray(model(x_adv)), axis=1) == y
    expected = float(np.mean(clean & adv))
    assert history.history["val_fgsm_accuracy"][-1] == pytest.approx(expected)
    assert monitor.tracing_count() == 1  # 2 epochs, batches of 32 and 28


def test_tensorboard_scalars_equal_the_logs(mnist_run):
    _, _, history, log_dir, _ = mnist_run
    run = os.path.join(log_dir, "robustness")
    for series, key in (
        ("fgsm", "val_fgsm_accuracy"),
        ("pgd", "val_pgd_accuracy"),
        ("worst_case", "val_robust_accuracy"),
    ):
        values = _values(
            _events(os.path.join(run, series)), "accuracy_under_attack"
        )
        assert [step for step, _ in values] == [0, 1]
        np.testing.assert_allclose(
            [float(v) for _, v in values], history.history[key], rtol=1e-6
        )
    clean = _events(os.path.join(run, "clean"))
    assert len(_values(clean, "accuracy_under_attack")) == 2
    assert len(_values(_events(run), "evaluation_seconds")) == 2
    # Keras' TensorBoard callback, placed after the monitor, logs the keys.
    keras_val = _events(os.path.join(log_dir, "validation"))
    values = _values(keras_val, "epoch_robust_accuracy")
    np.testing.assert_allclose(
        [float(v) for _, v in values],
        history.history["val_robust_accuracy"],
        rtol=1e-6,
    )


def test_tensorboard_image_is_one_grid_per_epoch(mnist_run):
    _, monitor, _, log_dir, _ = mnist_run
    acc = _events(os.path.join(log_dir, "robustness"))
    images = [t for t in acc.Tags()["tensors"] if "example" in t]
    assert images == ["adversarial_examples"]
    values = _values(acc, "adversarial_examples")
    assert [step for step, _ in values] == [0, 1]
    width, height, png = values[-1][1]
    decoded = tf.io.decode_png(png).numpy()
    assert decoded.shape == (int(height), int(width), 3)
    # 1 clean row + 2 rows per attack, 4 columns: taller than wide-ish.
    assert decoded.shape[0] > 300 and decoded.shape[1] > 300
    assert decoded.std() > 10  # not blank


def test_tensorboard_histograms(mnist_run):
    _, _, _, log_dir, _ = mnist_run
    acc = _events(os.path.join(log_dir, "robustness"))
    tags = set(acc.Tags()["tensors"])
    for tag in (
        "perturbation_l2_norm/pgd",
        "perturbation_norm/fgsm",
        "perturbation_norm/pgd",
        "logit_margin/clean",
        "logit_margin/fgsm",
        "logit_margin/pgd",
    ):
        assert tag in tags, tag
        buckets = _values(acc, tag)[-1][1]  # (k, 3): left, right, count
        assert buckets.shape[1] == 3
        assert buckets[:, 2].sum() == pytest.approx(60)
    norms = _values(acc, "perturbation_norm/fgsm")[-1][1]
    assert norms[:, 1].max() <= 0.1 + 1e-5


def test_custom_scalar_layout_and_setup_text(mnist_run):
    _, _, _, log_dir, _ = mnist_run
    acc = _events(os.path.join(log_dir, "robustness"))
    values = _values(acc, "custom_scalars__config__")
    assert len(values) == 1
    layout = layout_pb2.Layout.FromString(values[0][1].item())
    chart = layout.category[0].chart[0]
    assert chart.title == "accuracy under attack (validation subset)"
    assert list(chart.multiline.tag) == ["^accuracy_under_attack$"]
    text = _values(acc, "setup")[0][1].item().decode()
    assert "| fgsm | FGSM | linf | 0.1 |" in text


def test_writers_closed_on_train_end(mnist_run):
    assert mnist_run[1]._writer is None
    assert mnist_run[1]._series_writers == {}


# ------------------------------------------------------------- pictures
def test_grid_without_matplotlib_tiles_the_rows(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    x = np.zeros((3, 5, 5, 1), "float32")
    x_adv = x + 0.25
    grid = robustness_grid(
        x, [0, 1, 2], [0, 1, 2], {"a": (x_adv, [0, 1, 2])}, (0.0, 1.0)
    )
    assert grid.shape == (3 * 7 + 2, 3 * 7 + 2, 3)
    assert grid[2, 2, 0] == 0  # clean pixel: black
    # x_adv pixel 0.25: 63.75, truncated like every grid (and matplotlib).
    assert grid[9, 2, 0] == 63
    assert grid[16, 2, 0] == 255  # positive perturbation: brightest


def test_grid_with_labels_renders_rgb():
    x = np.random.default_rng(0).uniform(size=(2, 8, 8)).astype("float32")
    grid = robustness_grid(
        x, [1, 2], [1, 0], {"pgd": (x[::-1], [3, 2])}, title="t"
    )
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3


def test_grid_skipped_for_non_image_inputs():
    monitor = RobustnessMonitor((X_LINE, Y_LINE), attacks=line_attacks())
    results = monitor.evaluate(line_model())
    assert monitor.grid_image(0, results) is None


# ----------------------------------------------------------------- data
def test_dataset_gives_the_same_fixed_subset():
    data = tf.data.Dataset.from_tensor_slices((X_LINE, Y_LINE))
    for dataset in (data, data.batch(3)):
        monitor = RobustnessMonitor(
            dataset, attacks=line_attacks(), max_samples=7
        )
        np.testing.assert_array_equal(monitor.x, X_LINE[:7])
        np.testing.assert_array_equal(monitor.y, Y_LINE[:7])


def test_one_hot_labels_and_verbose_line(capsys):
    one_hot = np.eye(2, dtype="float32")[Y_LINE]
    monitor = RobustnessMonitor(
        (X_LINE, one_hot), attacks=line_attacks(), verbose=1
    )
    np.testing.assert_array_equal(monitor.y, Y_LINE)
    monitor.set_model(line_model())
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert logs["val_robust_accuracy"] == survive(0.5)
    assert "worst case 50.0%" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"freq": 0}, ValueError, "freq"),
        ({"max_samples": 0}, ValueError, "max_samples"),
        ({"images": -1}, ValueError, "images"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"verbose": 3}, ValueError, "verbose"),
        ({"log_dir": 3}, TypeError, "log_dir"),
        ({"attacks": "deepfool"}, ValueError, "attacks"),
        ({"attacks": {"robust": FGSM()}}, ValueError, "attacks"),
        ({"attacks": FGSM(targeted=True)}, ValueError, "targeted"),
        ({"attacks": FGSM(eps=[0.1] * 20)}, ValueError, "scalar eps"),
    ],
)
def test_invalid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        RobustnessMonitor((X_LINE, Y_LINE), **kwargs)


@pytest.mark.parametrize(
    "data, error, match",
    [
        ("x.npz", TypeError, "validation_data"),
        ([1, 2, 3], ValueError, "validation_data"),
        ((X_LINE, Y_LINE[:5]), ValueError, "same number"),
        ((X_LINE.astype("int32"), Y_LINE), TypeError, "floating"),
        ((X_LINE, Y_LINE + 0.5), ValueError, "integer class labels"),
        ((X_LINE, Y_LINE - 1), ValueError, ">= 0"),
        ((X_LINE + 5.0, Y_LINE), ValueError, "value_range"),
        ((X_LINE[:0], Y_LINE[:0]), ValueError, "at least one"),
    ],
)
def test_invalid_validation_data(data, error, match):
    attacks = FGSM(value_range=RANGE)
    with pytest.raises(error, match=match):
        RobustnessMonitor(data, attacks=attacks)


def test_labels_beyond_the_model_classes_raise():
    monitor = RobustnessMonitor(
        (X_LINE, Y_LINE + 1), attacks=FGSM(value_range=RANGE)
    )
    with pytest.raises(ValueError, match="model's classes"):
        monitor.evaluate(line_model())


def test_config_round_trip():
    monitor = RobustnessMonitor(
        (X_LINE, Y_LINE), attacks=line_attacks(), freq=3, images=0
    )
    config = monitor.get_config()
    with pytest.raises(ValueError, match="validation data"):
        RobustnessMonitor.from_config(config)
    clone = RobustnessMonitor.from_config(
        {**config, "validation_data": (X_LINE, Y_LINE)}
    )
    assert clone.get_config() == config
    assert isinstance(clone.attacks["pgd"], PGD)
