"""Tests for `evaluate_robustness` and `RobustnessReport`."""

import gc
import json
import math
import warnings
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.attacks import LatentPGD
from keras_adv.evaluation import RobustnessReport
from keras_adv.evaluation import _robustness as robustness
from keras_adv.evaluation import evaluate_robustness
from keras_adv.evaluation._attack_set import attack_dict
from keras_adv.evaluation._data import take as take_samples
from keras_adv.evaluation._graph import evaluator
from keras_adv.testing import linear_classifier
from keras_adv.testing import shift_cvae
from keras_adv.threat_models import LearnedPerturbationSet

EPSILONS = [0.0, 0.1, 0.2, 0.3]
EPS_LINEAR = [0.0, 0.05, 0.1, 0.2]


def _deterministic_attacks():
    return {"fgsm": FGSM(), "pgd": PGD(steps=5, random_start=False)}


def _without_times(report):
    d = report.to_dict()
    for entry in d["attacks"].values():
        entry.pop("seconds")
    d["checks"].pop("unbounded_seconds", None)
    return d


@pytest.fixture(scope="module")
def mnist():
    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    return x_train, y_train, x_test[:300], y_test[:300]


@pytest.fixture(scope="module")
def linear_mnist(mnist):
    """Softmax regression on the embedded subset (logits output)."""
    x_train, y_train, _, _ = mnist
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=2, batch_size=128, verbose=0)
    return model


@pytest.fixture(scope="module")
def report(linear_mnist, mnist):
    _, _, x, y = mnist
    return evaluate_robustness(
        linear_mnist, (x, y), epsilons=EPSILONS, batch_size=128, verbose=0
    )


# ------------------------------------------------------------ closed form
@pytest.fixture(scope="module")
def binary_problem():
    """A 2-class linear model on 8 features; FGSM is optimal for it.

    For logits `x W + b`, the cross-entropy gradient has the sign of
    `w_other - w_true` everywhere, so FGSM moves every coordinate by eps
    and lowers the margin `z_true - z_other` by exactly
    `eps * ||w_0 - w_1||_1`: a sample survives iff its clean margin
    exceeds that. The value range is wide enough that nothing is clipped.
    """
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 2)).astype("float32")
    b = np.array([0.1, -0.1], "float32")
    x = rng.uniform(-1.0, 1.0, size=(400, 8)).astype("float32")
    # Labels from another rule, so that some samples are wrong already.
    y = (x @ rng.normal(size=8) + 0.3 * x @ (w[:, 0] - w[:, 1]) < 0).astype(
        "int64"
    )
    logits = x.astype("float64") @ w + b
    margin = logits[np.arange(len(y)), y] - logits[np.arange(len(y)), 1 - y]
    l1 = float(np.abs(w[:, 0] - w[:, 1]).sum())
    # Drop the few samples within float32 noise of a threshold.
    gap = np.min(np.abs(margin[:, None] - l1 * np.array(EPS_LINEAR)), axis=1)
    keep = gap > 1e-3
    return linear_classifier(w, b), x[keep], y[keep], margin[keep], l1


def test_linear_model_matches_closed_form(binary_problem):
    model, x, y, margin, l1 = binary_problem
    epsilons = EPS_LINEAR
    assert len(x) > 390
    attacks = {
        "fgsm": FGSM(value_range=(-10.0, 10.0)),
        "pgd": PGD(steps=10, value_range=(-10.0, 10.0), seed=0),
    }
    report = evaluate_robustness(
        model, (x, y), attacks=attacks, epsilons=epsilons, verbose=0
    )
    expected = [float(np.mean(margin > eps * l1)) for eps in epsilons]
    clean = float(np.mean(margin > 0))
    assert report.clean_accuracy == pytest.approx(clean, abs=1e-12)
    assert clean < 0.9  # the data has wrongly classified samples
    for name in attacks:
        np.testing.assert_allclose(
            report.attacks[name]["accuracy"], expected, atol=1e-12
        )
        # Every coordinate moves by exactly eps (nothing is clipped).
        np.testing.assert_allclose(
            report.attacks[name]["mean_norm"], epsilons, rtol=1e-5
        )
        np.testing.assert_allclose(
            report.attacks[name]["max_norm"], epsilons, rtol=1e-5
        )
        expected_success = [(clean - a) / clean for a in expected]
        np.testing.assert_allclose(
            report.attacks[name]["success_rate"], expected_success, atol=1e-9
        )
    np.testing.assert_allclose(report.robust_accuracy, expected, atol=1e-12)
    assert report.num_samples == len(x)
    assert report.warnings == []


# ------------------------------------------------------------- properties
def test_eps_zero_is_clean_accuracy(report, linear_mnist, mnist):
    _, _, x, y = mnist
    predicted = np.argmax(np.asarray(linear_mnist(x)), axis=1)
    clean = float(np.mean(predicted == y))
    assert report.clean_accuracy == pytest.approx(clean)
    assert report.worst_case(0.0) == pytest.approx(clean)
    for name in report.attacks:
        assert report.accuracy(name, 0.0) == pytest.approx(clean)
        assert report.attacks[name]["success_rate"][0] == 0.0
        assert report.attacks[name]["max_norm"][0] == 0.0


def test_worst_case_is_below_every_attack(report):
    assert set(report.attacks) == {"fgsm", "pgd"}
    for i in range(len(EPSILONS)):
        for entry in report.attacks.values():
            assert report.robust_accuracy[i] <= entry["accuracy"][i]
    # A linear MNIST model is not robust: eps=0.3 breaks nearly everything.
    assert report.clean_accuracy > 0.8
    assert report.worst_case(0.3) < 0.1
    # Norms respect the ball.
    for entry in report.attacks.values():
        for eps, max_norm in zip(EPSILONS, entry["max_norm"]):
            assert max_norm <= eps + 1e-6


def test_normal_model_passes_the_checks(report):
    assert report.warnings == [], report.warnings
    checks = report.checks
    assert checks["output_kind"] == "logits"
    assert checks["zero_gradient_share"] == 0.0
    assert checks["unbounded_accuracy"] <= 0.02
    assert "Gradient-masking checks: passed" in report.table()


def test_arrays_and_datasets_give_the_same_report(linear_mnist, mnist):
    _, _, x, y = mnist
    x, y = x[:150], y[:150]
    kwargs = dict(epsilons=[0.0, 0.1], batch_size=64, verbose=0)
    from_arrays = evaluate_robustness(
        linear_mnist, (x, y), attacks=_deterministic_attacks(), **kwargs
    )
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))
    from_unbatched = evaluate_robustness(
        linear_mnist, unbatched, attacks=_deterministic_attacks(), **kwargs
    )
    batched = tf.data.Dataset.from_tensor_slices(
        (x, keras.utils.to_categorical(y, 10))
    ).batch(64)
    from_batched = evaluate_robustness(
        linear_mnist, batched, attacks=_deterministic_attacks(), **kwargs
    )
    expected = _without_times(from_arrays)
    assert _without_times(from_unbatched) == expected
    assert _without_times(from_batched) == expected


def test_batch_size_does_not_change_results(linear_mnist, mnist):
    _, _, x, y = mnist
    reports = [
        evaluate_robustness(
            linear_mnist,
            (x[:200], y[:200]),
            attacks=_deterministic_attacks(),
            epsilons=[0.0, 0.05],
            batch_size=batch_size,
            checks=False,
            verbose=0,
        )
        for batch_size in (200, 64)  # 64 pads the last batch of 8
    ]
    a, b = (_without_times(r) for r in reports)
    for name in a["attacks"]:
        np.testing.assert_allclose(
            a["attacks"][name]["mean_norm"],
            b["attacks"][name]["mean_norm"],
            rtol=1e-6,
        )
        a["attacks"][name].pop("mean_norm")
        b["attacks"][name].pop("mean_norm")
    assert a == b
    assert reports[0].num_samples == 200
    assert reports[0].checks == {}
    assert "not run" in reports[0].table()


def test_max_samples_and_infinite_datasets(linear_mnist, mnist):
    _, _, x, y = mnist
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat()
    with pytest.raises(ValueError, match="max_samples"):
        evaluate_robustness(linear_mnist, ds, verbose=0)
    report = evaluate_robustness(
        linear_mnist,
        ds.batch(32),
        attacks=FGSM(),
        epsilons=[0.1],
        max_samples=50,
        checks=False,
        verbose=0,
    )
    assert report.num_samples == 50
    assert list(report.attacks) == ["fgsm"]


def test_one_trace_per_attack(linear_mnist, mnist):
    # The attacks run inside the evaluation graph (not their own graphs),
    # which is traced once for 3 batches (64, 64, 22) and 3 radii, and kept
    # for the next call with the same model and attack objects.
    _, _, x, y = mnist
    attacks = _deterministic_attacks()
    for _ in range(2):
        evaluate_robustness(
            linear_mnist,
            (x[:150], y[:150]),
            attacks=attacks,
            epsilons=[0.0, 0.1, 0.2],
            batch_size=64,
            checks=False,
            verbose=0,
        )
    graph = evaluator(linear_mnist, attacks, x[:1])
    assert graph.tracing_count() == 1
    for attack in attacks.values():
        assert attack.tracing_count(linear_mnist) == 0


def test_a_learned_sets_noise_baseline_is_cached_outside_the_set():
    # The noise check of a learned set runs a baseline attack of its own;
    # it is kept in a weak cache (one per set, so the graph is reused),
    # not stored on the user's threat model, and dies with the set.
    model = linear_classifier([[1.0, -1.0]])
    tm = LearnedPerturbationSet(
        shift_cvae((1,)), radius=0.5, value_range=(-2.0, 2.0)
    )
    attack = LatentPGD(tm, seed=0)
    x = np.linspace(-0.95, 0.95, 20).astype("float32")[:, None]
    y = (x[:, 0] < 0).astype("int64")
    attributes = set(vars(tm))
    for _ in range(2):
        evaluate_robustness(
            model, (x, y), {"latent": attack}, [0.0, 0.3], verbose=0
        )
    assert set(vars(tm)) == attributes
    noise = robustness._noise_for(attack, tm.value_range)
    graph = evaluator(
        model, {"latent": attack, "noise latent": noise}, x, checks=True
    )
    assert graph.tracing_count() == 1
    ref = weakref.ref(tm)
    del tm, attack, noise, graph
    for _ in range(3):  # TensorFlow's caches may need more than one pass
        gc.collect()
    assert ref() is None


# ------------------------------------------------------------ the report
def test_to_dict_and_json_round_trip(report, tmp_path):
    d = report.to_dict()
    path = tmp_path / "report.json"
    text = report.to_json(path)
    assert json.loads(path.read_text()) == json.loads(text) == d
    rebuilt = RobustnessReport.from_dict(json.loads(text))
    assert rebuilt.to_dict() == d
    assert rebuilt.table() == report.table()
    assert "RobustnessReport(num_samples=300" in repr(report)


def test_table_contains_the_numbers(report):
    table = report.table()
    assert "300 samples" in table
    assert f"{100 * report.clean_accuracy:.1f}%" in table
    # Every attack named with its steps (the default PGD runs 10).
    labels = {"fgsm": "fgsm (linf)", "pgd": "pgd-10 (linf)"}
    for name, entry in report.attacks.items():
        assert f"{labels[name]}  " in table
        for value in entry["accuracy"] + entry["success_rate"]:
            assert f"{100 * value:.1f}%" in table
        assert f"{entry['seconds']:.2f} s" in table
    for value in report.robust_accuracy:
        assert f"{100 * value:.1f}%" in table
    assert str(report) == table


def test_terminal_table_is_plain_text_and_markdown_is_for_files(
    report, tmp_path
):
    table = report.table()
    assert "**" not in table and "|" not in table
    # The worst case is defined right under the accuracies.
    lines = table.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("worst"))
    assert lines[row + 1] == (
        "worst case: a sample counts as robust only if it resists every "
        "attack above"
    )
    # Aligned columns: every accuracy row has the width of the header.
    header = lines[3]
    assert all(len(line) == len(header) for line in lines[4 : row + 1])
    path = tmp_path / "report.md"
    markdown = report.to_markdown(path)
    assert path.read_text() == markdown + "\n"
    assert "| attack | eps 0 | eps 0.1 | eps 0.2 | eps 0.3 | seconds |" in (
        markdown
    )
    worst = " | ".join(f"**{100 * a:.1f}%**" for a in report.robust_accuracy)
    assert f"| **worst case** | {worst} | |" in markdown
    assert "| pgd-10 (linf) | " in markdown


def test_attack_labels_name_the_steps():
    from keras_adv.evaluation._attack_set import attack_label
    from keras_adv.evaluation._attack_set import attack_steps

    assert attack_label("pgd", "PGD", 20) == "pgd-20"
    assert attack_label("pgd20", "PGD", 20) == "pgd-20"  # registry name
    assert attack_label("pgd_2", "PGD", 7) == "pgd_2-7"
    assert attack_label("fgsm", "FGSM", 1) == "fgsm"
    assert attack_label("autoattack", "AutoAttack", None) == "autoattack"
    assert attack_steps(keras_adv.attacks.get("pgd20")) == 20
    assert attack_steps(keras_adv.attacks.get("square")) is None


def test_plot_writes_a_png(report, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curve.png"
    assert report.plot(str(path)) == str(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5000


def test_report_accessors_validate(report):
    with pytest.raises(ValueError, match="`attack`"):
        report.accuracy("cw", 0.1)
    with pytest.raises(ValueError, match="`eps`"):
        report.worst_case(0.15)


# ------------------------------------------------------------- verbosity
def test_progress_bar_only_when_verbose(linear_mnist, mnist, capsys):
    _, _, x, y = mnist
    kwargs = dict(attacks=FGSM(), epsilons=[0.1], batch_size=50, checks=False)
    capsys.readouterr()
    evaluate_robustness(linear_mnist, (x[:100], y[:100]), verbose=0, **kwargs)
    assert capsys.readouterr().out == ""
    evaluate_robustness(linear_mnist, (x[:100], y[:100]), verbose=1, **kwargs)
    out = capsys.readouterr().out
    assert "2/2" in out and "samples" in out


def test_verbose_auto_shows_bars_where_someone_watches(monkeypatch):
    import io
    import sys

    from keras_adv import _validation

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert _validation.check_verbose("auto") == 1
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a log file
    assert _validation.check_verbose("auto") == 2
    assert [_validation.check_verbose(v) for v in (0, 1, 2)] == [0, 1, 2]
    for bad in (3, True, "yes"):
        with pytest.raises(ValueError, match="verbose"):
            _validation.check_verbose(bad)


# ------------------------------------------------------ radii and units
def test_default_epsilons_follow_the_value_range():
    # A model of 0..255 inputs: the default radii are fractions of the
    # range (0.3 on [0, 1] is 76.5 on [0, 255]), not 0.3/255.
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3)).astype("float32")
    x = rng.uniform(0, 255, size=(16, 4)).astype("float32")
    y = np.argmax(x @ w, axis=1)
    attack = FGSM(value_range=(0, 255))
    kwargs = dict(attacks=attack, checks=False, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = evaluate_robustness(linear_classifier(w), (x, y), **kwargs)
    assert report.epsilons == [0.0, 25.5, 51.0, 76.5]


def test_tiny_epsilons_for_the_value_range_warn_at_call_time():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3)).astype("float32")
    model = linear_classifier(w)
    x = rng.uniform(0, 255, size=(16, 4)).astype("float32")
    y = np.argmax(x @ w, axis=1)
    attack = FGSM(value_range=(0, 255))
    with pytest.warns(UserWarning, match="tiny") as record:
        evaluate_robustness(
            model,
            (x, y),
            attack,
            epsilons=(0.0, 0.1, 0.2, 0.3),
            checks=False,
            verbose=0,
        )
    message = str(record[0].message)
    assert "(0, 255)" in message and "epsilons=(0, 8, 16)" in message
    assert record[0].filename == __file__  # points at the call
    # Radii in the inputs' units, and the usual radii on [0, 1], are fine.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate_robustness(
            model, (x, y), attack, [0, 8], checks=False, verbose=0
        )
        evaluate_robustness(
            model,
            (x / 255, y),
            FGSM(),
            [0, 1 / 255],
            checks=False,
            verbose=0,
        )


# ------------------------------------------------------------ AutoAttack
def _two_attack_autoattack(eps=0.3):
    """AutoAttack standard cut to APGD-CE and APGD-T (cheap for tests)."""
    attack = keras_adv.attacks.AutoAttack(eps=eps, seed=0)
    attack.components = attack.components[:2]
    return attack


def test_autoattack_runs_the_schedule_of_its_evaluate(monkeypatch, capsys):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 4)).astype("float32")
    model = linear_classifier(w)
    x = rng.uniform(0.3, 0.7, size=(40, 16)).astype("float32")
    y = np.argmax(x @ w, axis=1)
    y[:4] = (y[:4] + 1) % 4  # four samples wrong from the start
    eps = 0.02
    reference = _two_attack_autoattack(eps).evaluate(
        model, x, y, batch_size=16, verbose=0
    )
    assert 0 < reference.robust.sum() < 36  # some fooled, some not
    # The per-sample results of evaluate_robustness's schedule.
    runs = []
    schedule = keras_adv.attacks.AutoAttack.run_schedule

    def recording(self, *args, **kwargs):
        out = schedule(self, *args, **kwargs)
        runs.append(out)
        return out

    monkeypatch.setattr(keras_adv.attacks.AutoAttack, "run_schedule", recording)
    capsys.readouterr()
    report = evaluate_robustness(
        model,
        (x, y),
        {"autoattack": _two_attack_autoattack(), "fgsm": FGSM()},
        epsilons=[0.0, eps],
        batch_size=16,
        verbose=2,
    )
    ((robust, x_adv, after, _),) = runs
    np.testing.assert_array_equal(robust, reference.robust)
    np.testing.assert_array_equal(x_adv, reference.x_adv)
    assert after == reference.robust_after
    entry = report.attacks["autoattack"]
    assert entry["accuracy"] == [reference.clean_accuracy, robust.mean()]
    fgsm_ok = report.accuracy("fgsm", eps)
    assert report.worst_case(eps) <= min(robust.mean(), fgsm_ok)
    norms = np.abs(x_adv - x).max(axis=1)
    assert entry["max_norm"][1] == pytest.approx(norms.max())
    assert entry["mean_norm"][1] == pytest.approx(norms.mean())
    # Printed as it goes (verbose 2: lines, no progress bars).
    out = capsys.readouterr().out
    assert (
        f"autoattack: AutoAttack standard (linf, eps={eps:g}) on the 36 of "
        "40 samples classified correctly"
    ) in out
    value = 100 * after["apgd-ce"]
    assert f"robust accuracy after APGD-CE: {value:.2f}% (36 samples" in out
    assert f"autoattack: robust accuracy {100 * robust.mean():.2f}%" in out
    assert "━" not in out  # no bar characters


def test_autoattack_from_logits_is_checked_before_the_schedule():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
    )
    x = np.random.default_rng(0).uniform(size=(8, 4)).astype("float32")
    attack = keras_adv.attacks.AutoAttack(from_logits=True)
    with pytest.raises(ValueError, match="from_logits"):
        evaluate_robustness(
            model, (x, np.zeros(8, "int64")), attack, [0.0, 0.1], verbose=0
        )


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(epsilons=[-0.1]), ValueError, "epsilons"),
        (dict(epsilons=[]), ValueError, "epsilons"),
        (dict(epsilons="0.1"), ValueError, "epsilons"),
        (dict(epsilons=[math.nan]), ValueError, "epsilons"),
        (dict(attacks="deepfool"), ValueError, "attacks"),
        (dict(attacks=[]), ValueError, "attacks"),
        (dict(attacks=[FGSM(), 3]), TypeError, "attacks"),
        (dict(attacks={"not a name": FGSM()}), ValueError, "attacks"),
        (dict(attacks=FGSM(targeted=True)), ValueError, "targeted"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(max_samples=0), ValueError, "max_samples"),
        (dict(verbose=3), ValueError, "verbose"),
        (dict(checks=1), TypeError, "checks"),
        (dict(seed=-1), ValueError, "seed"),
    ],
)
def test_invalid_arguments(linear_mnist, mnist, kwargs, error, match):
    _, _, x, y = mnist
    with pytest.raises(error, match=match):
        evaluate_robustness(linear_mnist, (x[:10], y[:10]), **kwargs)


def test_invalid_model_and_data(linear_mnist, mnist):
    _, _, x, y = mnist
    with pytest.raises(TypeError, match="`model`"):
        evaluate_robustness(lambda x: x, (x, y))
    with pytest.raises(TypeError, match="`data`"):
        evaluate_robustness(linear_mnist, x)
    with pytest.raises(ValueError, match="different lengths"):
        evaluate_robustness(linear_mnist, (x[:10], y[:9]))
    with pytest.raises(ValueError, match="at least one sample"):
        evaluate_robustness(linear_mnist, (x[:0], y[:0]))
    unbatched_one_hot = tf.data.Dataset.from_tensor_slices(
        (x[:10], keras.utils.to_categorical(y[:10], 10))
    )
    with pytest.raises(ValueError, match="different lengths"):
        evaluate_robustness(linear_mnist, unbatched_one_hot, verbose=0)
    with pytest.raises(ValueError, match="integer class labels"):
        evaluate_robustness(linear_mnist, (x[:10], y[:10] + 0.5))
    with pytest.raises(ValueError, match="value_range"):
        evaluate_robustness(
            linear_mnist, (2.0 * x[:10] + 1.0, y[:10]), verbose=0
        )
    with pytest.raises(TypeError, match="floating-point"):
        evaluate_robustness(
            linear_mnist, ((x[:10] * 255).astype("uint8"), y[:10]), verbose=0
        )


# --------------------------------------------------------------- helpers
def test_attack_dict_names_and_take_samples(mnist):
    attacks = attack_dict([FGSM(), PGD(), PGD(steps=20)])
    assert list(attacks) == ["fgsm", "pgd", "pgd_2"]
    defaults = attack_dict(None)
    assert list(defaults) == ["fgsm", "pgd"]
    assert defaults["pgd"].steps == 10
    _, _, x, y = mnist
    xs, ys = take_samples((x, y), 70, batch_size=32)
    assert xs.shape == (70, 28, 28, 1) and ys.tolist() == y[:70].tolist()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    xs, ys = take_samples(ds, 40)
    np.testing.assert_array_equal(xs, x[:40])
