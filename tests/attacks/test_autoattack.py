"""AutoAttack: the ensemble's chaining, accounting and sanity flags."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_adv
from keras_adv.attacks import APGD
from keras_adv.attacks import AutoAttack
from keras_adv.testing import assert_config_round_trip
from keras_adv.testing import linear_classifier


def hadamard_weights(features=16, classes=4):
    """Orthogonal +-1 class prototypes (rows 1..classes of a Hadamard)."""
    h = np.array([[1.0]])
    while h.shape[0] < features:
        h = np.block([[h, h], [h, -h]])
    return h[1 : classes + 1].T.astype("float32")


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    w = hadamard_weights(16, 4)
    model = linear_classifier(w)
    x = rng.uniform(0.3, 0.7, size=(48, 16)).astype("float32")
    y = np.argmax(x @ w, axis=1)
    y[:6] = (y[:6] + 1) % 4  # six samples misclassified from the start
    return model, w, x, y


def test_versions_and_components():
    names = {
        v: [n for n, _ in AutoAttack(version=v).components]
        for v in ("standard", "plus", "rand")
    }
    assert names["standard"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert names["plus"] == [
        "apgd-ce",
        "apgd-dlr",
        "fab",
        "square",
        "apgd-t",
        "fab-t",
    ]
    assert names["rand"] == ["apgd-ce", "apgd-dlr"]
    attack = AutoAttack(eps=0.2)
    square = dict(attack.components)["square"]
    assert square.n_queries == 5000 and square.rescale_schedule is False
    # One live eps: changing the ensemble's eps changes every component's.
    attack.eps = 0.1
    assert all(float(c.eps) == 0.1 for _, c in attack.components)
    with pytest.raises(ValueError, match="version"):
        AutoAttack(version="fast")


def test_config_round_trip():
    restored = assert_config_round_trip(AutoAttack(eps=0.2, version="plus"))
    assert restored.version == "plus"
    assert keras_adv.attacks.AutoAttack is AutoAttack


def test_chain_spares_misclassified_and_never_weaker_than_apgd(problem):
    model, w, x, y = problem
    eps = 0.06
    attack = AutoAttack(eps=eps, seed=0)
    report = attack.evaluate(model, x, y, batch_size=20)
    pred_clean = np.argmax(x @ w, axis=1)
    assert report.clean_accuracy == pytest.approx(np.mean(pred_clean == y))
    # Samples wrong from the start are returned unchanged.
    wrong = pred_clean != y
    np.testing.assert_array_equal(report.x_adv[wrong], x[wrong])
    # Robust accuracy is cumulative: never rises along the chain.
    values = [report.clean_accuracy] + list(report.robust_after.values())
    assert all(b <= a for a, b in zip(values, values[1:]))
    assert report.robust_accuracy == values[-1]
    # Per-sample worst case: robust means correctly classified at x_adv.
    pred_adv = np.argmax(report.x_adv @ w, axis=1)
    np.testing.assert_array_equal(report.robust, pred_adv == y)
    delta = np.abs(report.x_adv - x).max(axis=1)
    assert delta.max() <= eps + 1e-6
    # Never weaker than its first attack alone.
    apgd = APGD(eps=eps, seed=0)(model, x, y)
    apgd_acc = np.mean(np.argmax(np.asarray(apgd) @ w, axis=1) == y)
    assert report.robust_accuracy <= apgd_acc + 1e-9
    assert 0.0 < report.robust_accuracy < report.clean_accuracy
    assert set(report.to_dict()) >= {"robust_accuracy", "robust_after"}
    assert "AutoAttack" in report.table()


def test_one_graph_call_matches_the_evaluation(problem):
    model, w, x, y = problem
    attack = AutoAttack(eps=0.06, seed=0)
    x_adv = np.asarray(attack(model, x, y))
    report = attack.evaluate(model, x, y, batch_size=48)
    robust = np.argmax(x_adv @ w, axis=1) == y
    # Same attacks, different random draws (one graph folds the seed per
    # attack): the robust accuracies agree closely on this easy problem.
    assert abs(robust.mean() - report.robust_accuracy) <= 2 / len(x)
    assert np.abs(x_adv - x).max() <= 0.06 + 1e-6
    np.testing.assert_array_equal(
        x_adv[np.argmax(x @ w, axis=1) != y], x[np.argmax(x @ w, axis=1) != y]
    )


class Rounding(keras.layers.Layer):
    """Quantises the input: the gradient is zero almost everywhere."""

    def call(self, x):
        return ops.round(x * 4.0) / 4.0


class Noisy(keras.layers.Layer):
    def call(self, x):
        return x + keras.random.normal(ops.shape(x), stddev=0.1)


def test_sanity_flags(problem):
    _, w, x, y = problem
    # Gradient masking: white-box attacks see a zero gradient, Square does
    # not need one and finds what they missed.
    masked = keras.Sequential(
        [keras.Input((16,)), Rounding(), keras.layers.Dense(4)]
    )
    masked.layers[-1].set_weights([w, np.zeros(4, "float32")])
    masked_x = np.round(x * 4.0) / 4.0
    masked_y = np.argmax(masked_x @ w, axis=1)
    with pytest.warns(UserWarning, match="gradient masking"):
        report = AutoAttack(eps=0.1, seed=0).evaluate(
            masked, x, masked_y, batch_size=48
        )
    assert report.robust_after["square"] < report.robust_after["fab-t"]
    # Probability outputs, a randomised model and three classes.
    probs = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(4, activation="softmax")]
    )
    noisy = keras.Sequential(
        [keras.Input((16,)), Noisy(), keras.layers.Dense(4)]
    )
    three = keras.Sequential([keras.Input((16,)), keras.layers.Dense(3)])
    attack = AutoAttack(eps=0.0, seed=0)
    flags = {}
    for name, model, labels in (
        ("probs", probs, y),
        ("noisy", noisy, y),
        ("three", three, y % 3),
    ):
        with pytest.warns(UserWarning):
            flags[name] = " ".join(
                AutoAttack(eps=0.0, seed=0)
                .evaluate(model, x[:8], labels[:8], batch_size=8)
                .flags
            )
    assert "probabilities" in flags["probs"]
    assert "randomised" in flags["noisy"]
    assert "3 classes" in flags["three"]
    del attack


def test_eot_logits_average_gradients():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    adapter = keras_adv.attacks.ModelLogits(model, from_logits=True)
    eot = keras_adv.attacks.EOTModelLogits(adapter, iterations=5)
    x = tf.constant(np.full((2, 3), 0.5, "float32"))

    def objective(logits):
        return logits[:, 0]

    v1, g1 = adapter.value_and_input_gradient(objective, x)
    v5, g5 = eot.value_and_input_gradient(objective, x)
    np.testing.assert_allclose(v1, v5, rtol=1e-6)
    np.testing.assert_allclose(g1, g5, rtol=1e-6)


@pytest.mark.parametrize(
    "labels, match",
    [
        (lambda y: np.where(np.arange(len(y)) % 4 == 0, 7, y), r"\[0, 4\)"),
        (lambda y: np.where(np.arange(len(y)) % 4 == 0, -1, y), r"\[0, 4\)"),
        (lambda y: y + 0.5, "integer class ids"),
        (lambda y: np.eye(5, dtype="float32")[y], "5 classes"),
    ],
    ids=["above", "negative", "fractional", "one-hot-width"],
)
def test_evaluate_refuses_labels_that_are_not_classes(problem, labels, match):
    # Counted as misclassified, they would lower the clean accuracy
    # without a word (0.75 instead of 1.0 with a quarter of labels 7).
    model, _, x, y = problem
    attack = AutoAttack(eps=0.05, version="rand")
    with pytest.raises(ValueError, match=match) as info:
        attack.evaluate(model, x, labels(y))
    assert "y" in str(info.value) or "One-hot" in str(info.value)


def test_evaluate_reads_one_hot_and_column_labels_as_ids(problem):
    model, _, x, y = problem
    attack = AutoAttack(eps=0.0, version="rand")
    clean = attack.evaluate(model, x, y).clean_accuracy
    assert clean == pytest.approx(np.mean(y == np.argmax(x @ problem[1], 1)))
    for labels in (np.eye(4, dtype="float32")[y], y[:, None].astype("f")):
        assert attack.evaluate(model, x, labels).clean_accuracy == clean


def test_no_robust_sample_left_skips_the_attacks():
    # Every sample misclassified before the attacks: no attack runs (an
    # empty batch through oneDNN's Conv2D fails on CPU), x comes back.
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    x = np.random.default_rng(0).uniform(size=(6, 8, 8, 1)).astype("float32")
    wrong = (np.argmax(np.asarray(model(x)), axis=-1) + 1) % 3
    attack = AutoAttack(eps=0.1, version="standard", seed=0)
    np.testing.assert_array_equal(np.asarray(attack(model, x, wrong)), x)


# ------------------------------------------------------------- output
def _two_attacks(eps):
    """AutoAttack standard cut to APGD-CE and APGD-T (cheap for tests)."""
    attack = AutoAttack(eps=eps, seed=0)
    attack.components = attack.components[:2]
    return attack


def test_evaluate_prints_as_it_goes_and_is_silent_at_verbose_0(problem, capsys):
    model, _, x, y = problem
    capsys.readouterr()
    quiet = _two_attacks(0.06).evaluate(model, x, y, batch_size=20, verbose=0)
    assert capsys.readouterr().out == ""
    report = _two_attacks(0.06).evaluate(model, x, y, batch_size=20, verbose=1)
    out = capsys.readouterr().out
    # Stateless seeds: the same call gives the same result.
    np.testing.assert_array_equal(report.robust, quiet.robust)
    assert out.startswith(
        "AutoAttack standard (linf, eps=0.06) on 48 samples: apgd-ce, apgd-t\n"
        f"initial accuracy: {100 * report.clean_accuracy:.2f}%\n"
        "APGD-CE on 42 samples\n"
    )
    # A Keras progress bar over the 3 batches of 20, 20 and 2 samples.
    assert "3/3" in out and "s/batch" in out and "robust_accuracy" in out
    after = report.robust_after
    assert (
        f"robust accuracy after APGD-CE: {100 * after['apgd-ce']:.2f}% "
        f"(42 samples attacked in {report.seconds['apgd-ce']:.1f} s, "
        "total time"
    ) in out
    assert f"robust accuracy after APGD-T: {100 * after['apgd-t']:.2f}%" in out
    assert out.rstrip().endswith(
        f"robust accuracy: {100 * report.robust_accuracy:.2f}% "
        f"(total time {report.total_seconds:.1f} s)"
    )
    # verbose=2 (and "auto" off a terminal): the lines without the bars.
    _two_attacks(0.06).evaluate(model, x, y, batch_size=20, verbose="auto")
    lines = capsys.readouterr().out
    assert "robust accuracy after APGD-T" in lines
    assert "\u2501" not in lines and "APGD-CE on 42 samples" not in lines
    with pytest.raises(ValueError, match="verbose"):
        _two_attacks(0.06).evaluate(model, x, y, verbose=3)


def test_report_table_is_plain_text_and_markdown_is_for_files(tmp_path):
    report = keras_adv.attacks.AutoAttackReport(
        "standard", "linf", 0.3, 200, 0.985
    )
    report.robust_after = {"apgd-ce": 0.9, "apgd-t": 0.875}
    report.seconds = {"apgd-ce": 12.25, "apgd-t": 30.5}
    report.robust_accuracy, report.total_seconds = 0.875, 43.0
    table = report.table()
    assert "**" not in table and "|" not in table
    rows = table.splitlines()[2:7]
    assert rows[0].split() == ["after", "robust", "accuracy", "seconds"]
    assert [r.split() for r in rows[1:]] == [
        ["clean", "98.50%"],
        ["apgd-ce", "90.00%", "12.2"],
        ["apgd-t", "87.50%", "30.5"],
        ["AutoAttack", "87.50%", "43.0"],
    ]
    # Aligned: the accuracies end in one column, the seconds in another.
    assert len({r.index("%") for r in rows[1:]}) == 1
    assert len({len(r) for r in rows[2:]}) == 1
    assert "resists every" in table and str(report) == table
    path = tmp_path / "autoattack.md"
    markdown = report.to_markdown(path)
    assert "| **AutoAttack** | **87.50%** | 43.0 |" in markdown
    assert path.read_text() == markdown + "\n"


def test_rand_components_average_gradients_when_called_alone():
    # evaluate() calls the components one by one: the rand version's
    # APGDs must use EOT there too, as in the one-graph path.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    for _, component in AutoAttack(version="rand").components:
        adapter = component.model_logits(model)
        assert isinstance(adapter, keras_adv.attacks.EOTModelLogits)
        assert adapter.iterations == 20
    for _, component in AutoAttack().components:
        adapter = component.model_logits(model)
        assert not isinstance(adapter, keras_adv.attacks.EOTModelLogits)


def test_evaluate_compiles_its_prediction_once_per_model(problem):
    import gc
    import weakref

    from keras_adv.attacks._autoattack_report import _predictor

    model, _, x, _ = problem
    assert _predictor(model, None) is _predictor(model, None)
    other = keras.Sequential([keras.Input((16,)), keras.layers.Dense(4)])
    _predictor(other, None)(x[:3])
    ref = weakref.ref(other)
    del other
    gc.collect()
    assert ref() is None  # the cache does not keep models alive
