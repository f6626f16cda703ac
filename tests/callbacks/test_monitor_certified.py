"""Tests of RobustnessMonitor(certify=...): verified accuracy per epoch.

The "kink model": one input x, hidden h1 = relu(x + 1), h2 = relu(b x + 1),
logits (h1 - h2, h2 - h1); class 0 iff x > 0. On the samples below the
ReLUs stay active, so the margin is 2 (1 - b) |x| and an attack of L-inf
(or, in 1-D, L2) radius eps lowers it to 2 (1 - b) (|x| - eps): a sample
survives iff |x| > eps. Interval bounds treat h1 and h2 as independent:
their margin bound is 2 ((1 - b) |x| - (1 + b) eps), so IBP verifies iff
|x| > eps (1 + b) / (1 - b) (3 eps at b = 0.5, eps at b = 0), while
CROWN-IBP, linear on stable ReLUs, verifies iff |x| > eps.
"""

import glob
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)
from tensorboard.plugins.custom_scalar import layout_pb2

from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.attacks import LatentPGD
from keras_adv.callbacks import RobustnessMonitor
from keras_adv.certification import SmoothedClassifier
from keras_adv.certification import verified_accuracy
from keras_adv.certification import verified_mask
from keras_adv.testing import linear_classifier
from keras_adv.testing import shift_cvae
from keras_adv.threat_models import LearnedPerturbationSet

RANGE = (-2.0, 2.0)
X = np.linspace(-0.95, 0.95, 20).astype("float32")[:, None]  # |x|=.05...
Y = (X[:, 0] < 0).astype("int64")


def share_above(threshold):
    """The share of samples with |x| > threshold (none sits on 0.1 k)."""
    return float(np.mean(np.abs(X[:, 0]) > threshold))


def kink_weights(b):
    return [
        np.array([[1.0, b]], "float32"),
        np.ones(2, "float32"),
        np.array([[1.0, -1.0], [-1.0, 1.0]], "float32"),
        np.zeros(2, "float32"),
    ]


def kink_model(b=0.5):
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(2, activation="relu", name="hidden"),
            keras.layers.Dense(2, name="logits"),
        ]
    )
    model.set_weights(kink_weights(b))
    model.compile(
        keras.optimizers.SGD(learning_rate=0.0),  # only SetB changes them
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


class SetB(keras.callbacks.Callback):
    """Before the monitor: sets b for the evaluation of each epoch."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        self.model.set_weights(kink_weights(self.values[epoch]))


# ------------------------------------------------- a fit with TensorBoard
@pytest.fixture(scope="module")
def kink_run(tmp_path_factory):
    """2 epochs: b = 0.5 then b = 0, FGSM and PGD at eps 0.1, IBP."""
    tmp = tmp_path_factory.mktemp("certified")
    log_dir = str(tmp / "logs")
    monitor = RobustnessMonitor(
        (X, Y),
        attacks={
            "fgsm": FGSM(eps=0.1, value_range=RANGE),
            "pgd": PGD(eps=0.1, steps=5, value_range=RANGE, seed=0),
        },
        batch_size=8,
        log_dir=log_dir,
        certify="ibp",
    )
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_verified_accuracy", mode="max", patience=5
    )
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp / "best.keras"),
        monitor="val_verified_accuracy",
        mode="max",
        save_best_only=True,
    )
    model = kink_model()
    history = model.fit(
        X,
        Y,
        epochs=2,
        batch_size=20,
        verbose=0,
        callbacks=[SetB([0.5, 0.0]), monitor, stopper, checkpoint],
    )
    return model, monitor, history, stopper, checkpoint, log_dir


def test_logged_verified_accuracy_is_the_closed_form(kink_run):
    _, monitor, history, _, _, _ = kink_run
    # IBP: |x| > 3 eps at b = 0.5, |x| > eps at b = 0; attacks: |x| > eps.
    assert history.history["val_verified_accuracy"] == [
        share_above(0.3),
        share_above(0.1),
    ]
    assert history.history["val_robust_accuracy"] == [share_above(0.1)] * 2
    assert share_above(0.3) == 0.7 and share_above(0.1) == 0.9
    # One ball (both attacks at eps 0.1): no per-attack keys.
    assert monitor.log_keys() == [
        "val_fgsm_accuracy",
        "val_pgd_accuracy",
        "val_robust_accuracy",
        "val_verified_accuracy",
    ]
    assert "val_fgsm_verified_accuracy" not in history.history


def test_logged_value_equals_a_direct_computation(kink_run):
    model, monitor, history, _, _, _ = kink_run
    direct = verified_accuracy(
        model, monitor.x, monitor.y, 0.1, method="ibp", value_range=RANGE
    )
    assert history.history["val_verified_accuracy"][-1] == direct
    np.testing.assert_array_equal(
        monitor.last_results["verified_mask"],
        np.asarray(verified_mask(model, X, Y, 0.1, "ibp", value_range=RANGE)),
    )


def test_verified_samples_survive_every_attack(kink_run):
    _, monitor, history, _, _, _ = kink_run
    results = monitor.last_results
    survived = results["clean_pred"] == monitor.y
    for pred in results["adv_pred"].values():
        survived &= pred == monitor.y
    mask = results["verified_mask"]
    assert mask.any() and not (mask & ~survived).any()
    for verified, robust in zip(
        history.history["val_verified_accuracy"],
        history.history["val_robust_accuracy"],
    ):
        assert verified <= robust


def test_per_attack_masks_are_in_the_results(kink_run):
    _, monitor, _, _, _, _ = kink_run
    masks = monitor.last_results["verified_masks"]
    assert set(masks) == {"fgsm", "pgd"}
    for mask in masks.values():  # one ball: each equals the joint mask
        np.testing.assert_array_equal(
            mask, monitor.last_results["verified_mask"]
        )


def unsound_verified_mask(model, x, y, eps, *args, **kwargs):
    """A broken certifier: verifies every sample at every radius."""
    return tf.ones(tf.shape(x)[:1], tf.bool)


def test_an_attack_that_breaks_a_verified_sample_stops_fit(monkeypatch):
    from keras_adv.callbacks import _monitor_certification

    monkeypatch.setattr(
        _monitor_certification, "verified_mask", unsound_verified_mask
    )
    monitor = RobustnessMonitor(
        (X, Y),
        attacks={"fgsm": FGSM(eps=0.1, value_range=RANGE)},
        batch_size=8,
        certify="ibp",
    )
    # b = 0: FGSM at eps 0.1 breaks exactly |x| <= 0.1, samples 9 and 10.
    model = kink_model(b=0.0)
    with pytest.raises(RuntimeError, match="a certificate was broken") as e:
        model.fit(X, Y, epochs=1, batch_size=20, verbose=0, callbacks=[monitor])
    message = str(e.value)
    assert "sample 9 is verified at the ball of attack 'fgsm'" in message
    assert "sample 10 " in message and "sample 8 " not in message


def test_soundness_under_low_precision_is_a_warning():
    from keras_adv.callbacks._monitor_certification import check_soundness

    y = np.array([0, 1, 1])
    results = {
        "eps": {"pgd": 0.3},
        "clean_pred": np.array([0, 1, 0]),  # sample 2 wrong even clean
        "adv_pred": {"pgd": np.array([1, 1, 0])},  # sample 0 broken
        "verified_masks": {"pgd": np.array([True, True, True])},
    }
    with pytest.warns(UserWarning, match="sample 0 .* the attack changes"):
        check_soundness(results, y, low_precision=True)
    with pytest.raises(RuntimeError, match="sample 2 .* its clean input"):
        check_soundness(results, y, low_precision=False)
    results["verified_masks"]["pgd"] = np.array([False, True, False])
    check_soundness(results, y, low_precision=False)  # sound: no error


def test_traced_once_across_epochs(kink_run):
    _, monitor, _, _, _, _ = kink_run
    # Traced at train begin; 2 epochs of batches of 8, 8 and 4: no retrace.
    assert monitor.certification_tracing_count() == 1
    assert monitor.tracing_count() == 1


def test_early_stopping_and_checkpoint_see_the_key(kink_run):
    _, _, _, stopper, checkpoint, log_dir = kink_run
    assert stopper.best == share_above(0.1)
    assert checkpoint.best == share_above(0.1)
    assert os.path.exists(os.path.join(os.path.dirname(log_dir), "best.keras"))


def _events(path):
    assert glob.glob(os.path.join(path, "events.out.tfevents.*")), path
    acc = EventAccumulator(path, size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def _values(acc, tag):
    return [(e.step, tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]


def test_event_file_holds_one_chart_of_both_tags(kink_run):
    _, _, history, _, _, log_dir = kink_run
    run = os.path.join(log_dir, "robustness")
    layouts = _values(_events(run), "custom_scalars__config__")
    assert len(layouts) == 1  # written once, at train begin
    layout = layout_pb2.Layout.FromString(layouts[0][1].item())
    (category,) = layout.category
    (chart,) = category.chart
    assert chart.title.startswith("robust accuracy: verified (ibp")
    (regex,) = chart.multiline.tag
    for tag in ("accuracy_under_attack", "verified_accuracy"):
        assert re.search(regex, tag), (regex, tag)
    assert not re.search(regex, "mean_perturbation_norm/fgsm")
    # The certified and the empirical series, with the values of the logs.
    for series, tag, key in (
        ("verified", "verified_accuracy", "val_verified_accuracy"),
        ("worst_case", "accuracy_under_attack", "val_robust_accuracy"),
    ):
        values = _values(_events(os.path.join(run, series)), tag)
        assert [step for step, _ in values] == [0, 1]
        np.testing.assert_allclose(
            [float(v) for _, v in values], history.history[key], rtol=1e-6
        )
    text = _values(_events(run), "setup")[0][1].item().decode()
    assert "**Verified** (ibp bounds)" in text


def test_writers_closed_on_train_end(kink_run):
    monitor = kink_run[1]
    assert monitor._writer is None and monitor._series_writers == {}


# ----------------------------------------------------- without fit
@pytest.mark.parametrize(
    "method, threshold",
    [("ibp", 0.3), ("crown_ibp", 0.1), ("crown", 0.1)],
)
def test_methods_on_the_kink_model(method, threshold):
    monitor = RobustnessMonitor(
        (X, Y), attacks=FGSM(eps=0.1, value_range=RANGE), certify=method
    )
    results = monitor.evaluate(kink_model())
    assert results["verified_accuracy"] == share_above(threshold)
    assert results["robust_accuracy"] == share_above(0.1)


def test_distinct_balls_get_one_key_per_attack():
    attacks = {
        "fgsm": FGSM(eps=0.1, value_range=RANGE),
        "pgd": PGD(eps=0.2, norm="l2", steps=5, value_range=RANGE, seed=0),
    }
    monitor = RobustnessMonitor((X, Y), attacks=attacks, certify="ibp")
    monitor.set_model(kink_model())
    logs = {}
    monitor.on_epoch_end(0, logs)
    # In 1-D the L2 ball is the L-inf one: IBP verifies iff |x| > 3 eps.
    assert logs["val_fgsm_verified_accuracy"] == share_above(0.3)
    assert logs["val_pgd_verified_accuracy"] == share_above(0.6)
    assert logs["val_verified_accuracy"] == share_above(0.6)  # every ball
    assert logs["val_pgd_accuracy"] == share_above(0.2)
    assert monitor.log_keys()[-3:] == [
        "val_verified_accuracy",
        "val_fgsm_verified_accuracy",
        "val_pgd_verified_accuracy",
    ]
    assert monitor.certification_tracing_count() == 2  # linf and l2
    attacks["fgsm"].eps = 0.2  # eps is a tensor argument: no retrace
    monitor.on_epoch_end(1, logs)
    assert logs["val_fgsm_verified_accuracy"] == share_above(0.6)
    assert monitor.certification_tracing_count() == 2


def test_verbose_line_has_the_verified_share(capsys):
    monitor = RobustnessMonitor(
        (X, Y),
        attacks=FGSM(eps=0.1, value_range=RANGE),
        certify="ibp",
        verbose=1,
    )
    monitor.set_model(kink_model())
    monitor.on_epoch_end(0, {})
    assert "worst case 90.0%, verified (ibp) 70.0%" in capsys.readouterr().out


def test_trained_model_logs_the_direct_value():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 1.0).astype("int64")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.05),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = keras.models.clone_model(model)
    before.set_weights(model.get_weights())
    monitor = RobustnessMonitor(
        (x, y),
        attacks=[FGSM(eps=0.05), PGD(eps=0.05, steps=5, seed=0)],
        batch_size=24,
        certify="crown_ibp",
    )
    history = model.fit(
        x, y, epochs=3, batch_size=16, verbose=0, callbacks=[monitor]
    )
    logged = history.history["val_verified_accuracy"]
    assert logged[-1] == verified_accuracy(
        model, x, y, 0.05, method="crown_ibp"
    )
    # The weights moved and the graph traced at train begin saw it.
    assert logged[-1] != verified_accuracy(
        before, x, y, 0.05, method="crown_ibp"
    )
    assert all(
        v <= r for v, r in zip(logged, history.history["val_robust_accuracy"])
    )
    assert monitor.certification_tracing_count() == 1


# ------------------------------------------------------------- errors
SMOOTHED = SmoothedClassifier(linear_classifier([[1.0, -1.0]]), 0.25)


@pytest.mark.parametrize(
    "certify, error, match",
    [
        ("crown-ipb", ValueError, r"`certify`.*Did you mean 'crown_ibp'\?"),
        ("ipb", ValueError, r"Did you mean 'ibp'\?"),
        ("interval", ValueError, r"'crown', 'crown_ibp', 'ibp' or None"),
        ("smoothing", ValueError, "certifies a smoothed classifier"),
        (True, TypeError, "certify"),
        (SMOOTHED, TypeError, r"evaluate_robustness\(certify="),
    ],
)
def test_invalid_certify(certify, error, match):
    with pytest.raises(error, match=match):
        RobustnessMonitor(
            (X, Y), attacks=FGSM(value_range=RANGE), certify=certify
        )


def test_certify_is_case_insensitive_and_in_the_config():
    monitor = RobustnessMonitor(
        (X, Y), attacks=FGSM(value_range=RANGE), certify="CROWN-IBP"
    )
    assert monitor.certify == "crown_ibp"
    alias = RobustnessMonitor(
        (X, Y), attacks=FGSM(value_range=RANGE), certify="crown_ibp"
    )
    assert alias.certify == "crown_ibp"  # keras_adv._names.CERTIFY_ALIASES
    config = monitor.get_config()
    assert config["certify"] == "crown_ibp"
    clone = RobustnessMonitor.from_config({**config, "validation_data": (X, Y)})
    assert clone.certify == "crown_ibp"
    assert clone.log_keys() == monitor.log_keys()


def test_attack_names_that_clash_with_the_verified_keys():
    attacks = {
        "pgd": FGSM(value_range=RANGE),
        "pgd_verified": FGSM(value_range=RANGE),
    }
    with pytest.raises(ValueError, match="pgd_verified"):
        RobustnessMonitor((X, Y), attacks=attacks, certify="ibp")
    with pytest.raises(ValueError, match="'verified'"):
        RobustnessMonitor(
            (X, Y), attacks={"verified": FGSM(value_range=RANGE)}, certify="ibp"
        )
    RobustnessMonitor((X, Y), attacks=attacks)  # fine without certify


class Batches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.count = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.count += 1


@pytest.mark.parametrize(
    "layer, certify, match",
    [
        (keras.layers.LayerNormalization(name="my_norm"), "ibp", "'my_norm'"),
        (
            keras.layers.Dense(2, activation="tanh", name="my_tanh"),
            "crown_ibp",
            "'my_tanh'.*method='ibp' bounds it",
        ),
    ],
)
def test_unsupported_layer_fails_at_train_begin(layer, certify, match):
    model = keras.Sequential([keras.Input((1,)), layer, keras.layers.Dense(2)])
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    monitor = RobustnessMonitor(
        (X, Y), attacks=FGSM(eps=0.1, value_range=RANGE), certify=certify
    )
    batches = Batches()
    with pytest.raises(NotImplementedError, match=match) as info:
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[monitor, batches])
    assert batches.count == 0  # before the first batch
    assert f"RobustnessMonitor(certify={certify!r})" in str(info.value)


def test_without_certify_nothing_changes():
    monitor = RobustnessMonitor(
        (X, Y), attacks=FGSM(eps=0.1, value_range=RANGE)
    )
    results = monitor.evaluate(kink_model())
    assert "verified_accuracy" not in results
    assert monitor.certification_tracing_count() == 0
    assert monitor.log_keys() == ["val_fgsm_accuracy", "val_robust_accuracy"]


def test_attacks_outside_an_lp_ball_are_refused():
    tm = LearnedPerturbationSet(shift_cvae((1,)), radius=0.5, value_range=RANGE)
    attacks = {"latent": LatentPGD(tm, seed=0)}
    with pytest.raises(ValueError, match=r"`certify`.*'latent' has norm"):
        RobustnessMonitor((X, Y), attacks=attacks, certify="ibp")
    RobustnessMonitor((X, Y), attacks=attacks)  # fine without certify


def test_inputs_of_another_shape_than_the_model_fail_at_train_begin():
    # Keras would run (n, 1) inputs through Input((1, 1)) + Flatten.
    model = keras.Sequential(
        [keras.Input((1, 1)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    monitor = RobustnessMonitor(
        (X, Y), attacks=FGSM(eps=0.1, value_range=RANGE), certify="ibp"
    )
    monitor.set_model(model)
    with pytest.raises(ValueError, match=r"`validation_data`.*\(batch, 1, 1\)"):
        monitor.on_train_begin()
    assert monitor.certification_tracing_count() == 0


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_subclassed_model_fails_at_train_begin():
    model = Subclassed()
    model(X)
    monitor = RobustnessMonitor(
        (X, Y), attacks=FGSM(eps=0.1, value_range=RANGE), certify="ibp"
    )
    monitor.set_model(model)
    with pytest.raises(ValueError, match=r"certify='ibp'\) cannot certify"):
        monitor.on_train_begin()
