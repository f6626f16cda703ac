"""Tests for randomized smoothing: `SmoothedClassifier`, its statistics and
`CertificationReport`.

Closed forms first: the Clopper-Pearson bound and the binomial test against
`scipy.stats`; `certify` against an independent scipy computation of the
same counts; the 1-D model `f(x) = [x > 0]`, whose smoothed classifier has
`p_A = Phi(|x| / sigma)` and certified radius `|x|` in the limit.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_adv import _random
from keras_adv.certification import CertificationReport
from keras_adv.certification import SmoothedClassifier
from keras_adv.certification import _statistics

SIGMA = 0.5


def step_model(softmax=False):
    """`f(x) = [x > 0]` on one feature: logits `(-x, x)`."""
    layer = keras.layers.Dense(2, activation="softmax" if softmax else None)
    model = keras.Sequential([keras.Input((1,)), layer])
    model.set_weights([np.array([[-1.0, 1.0]]), np.zeros(2)])
    return model


def three_class_model():
    """Class 0, 1 or 2 as the one feature is below -1, in [-1, 1], above."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3)])
    model.set_weights([np.array([[-2.0, 0.0, 2.0]]), np.array([-2.0, 0, -2])])
    return model


# ----------------------------------------------------------------- statistics
@pytest.mark.parametrize("alpha", [0.001, 0.05])
def test_clopper_pearson_lower_is_the_beta_quantile(alpha):
    n = np.array([1, 10, 100, 100, 1000, 1000, 100000])
    k = np.array([1, 7, 50, 100, 0, 999, 99000])
    bound = _statistics.clopper_pearson_lower(k, n, alpha)
    expected = np.where(
        k > 0, stats.beta.ppf(alpha, np.maximum(k, 1), n - k + 1), 0
    )
    np.testing.assert_allclose(bound, expected, rtol=1e-10, atol=1e-12)
    # The defining property: P(X >= k | p = bound) = alpha.
    tail = stats.binom.sf(k[k > 0] - 1, n[k > 0], bound[k > 0])
    np.testing.assert_allclose(tail, alpha, rtol=1e-6)
    # All successes: the closed form alpha ** (1 / n).
    np.testing.assert_allclose(
        _statistics.clopper_pearson_lower(n, n, alpha), alpha ** (1.0 / n)
    )


def test_binomial_p_value_matches_scipy_binomtest():
    for n in (1, 2, 9, 10, 101, 1000):
        for k in range((n + 1) // 2, n + 1):
            expected = stats.binomtest(k, n, 0.5).pvalue
            got = _statistics.two_sided_binomial_p_value(k, n)
            np.testing.assert_allclose(got, expected, rtol=1e-9, err_msg=k)


def _independent_certify(selection, estimation, sigma, alpha):
    """CERTIFY written again with scipy.stats, one sample at a time."""
    predictions, radii = [], []
    for sel, est in zip(selection, estimation):
        guess = int(np.argmax(sel))
        n_a, n = int(est[guess]), int(est.sum())
        lower = stats.beta.ppf(alpha, n_a, n - n_a + 1) if n_a else 0.0
        if lower < 0.5:
            predictions.append(-1)
            radii.append(0.0)
        else:
            predictions.append(guess)
            radii.append(sigma * stats.norm.ppf(lower))
    return np.array(predictions), np.array(radii)


def test_certify_equals_an_independent_computation_of_mocked_counts():
    selection = np.array(
        [[90, 10, 0], [3, 96, 1], [40, 40, 20], [0, 0, 100], [50, 49, 1]]
    )
    estimation = np.array(
        [[990, 10, 0], [5, 990, 5], [400, 420, 180], [0, 0, 1000], [3, 2, 995]]
    )
    smoothed = SmoothedClassifier(three_class_model(), sigma=0.25)
    draws = iter([selection, estimation])
    calls = []

    def fake_counts(x, n, seed):
        calls.append(n)
        return next(draws)

    smoothed._counts = fake_counts
    x = np.zeros((5, 1), "float32")
    predictions, radii = smoothed.certify(x, n0=100, n=1000, alpha=0.001)
    assert calls == [100, 1000]
    expected = _independent_certify(selection, estimation, 0.25, 0.001)
    np.testing.assert_array_equal(predictions, expected[0])
    np.testing.assert_allclose(radii, expected[1], rtol=1e-9)
    # Row 5: the selection picks class 0, which the estimation barely sees.
    assert predictions.tolist() == [0, 1, -1, 2, -1]


def test_certify_equals_an_independent_computation_of_the_same_counts():
    """Real sampling: the counts come from `sample_counts` with the seeds
    `certify` folds from its own (selection 0, estimation 1)."""
    smoothed = SmoothedClassifier(three_class_model(), sigma=0.7)
    x = np.array([[-1.5], [0.2], [1.0], [3.0]], "float32")
    seed = _random.as_stateless_seed(11)
    selection = smoothed.sample_counts(x, 50, seed=_random.fold_seed(seed, 0))
    estimation = smoothed.sample_counts(
        x, 2000, seed=_random.fold_seed(seed, 1)
    )
    predictions, radii = smoothed.certify(x, 50, 2000, 0.01, seed=11)
    expected = _independent_certify(selection, estimation, 0.7, 0.01)
    np.testing.assert_array_equal(predictions, expected[0])
    np.testing.assert_allclose(radii, expected[1], rtol=1e-9)


def test_counts_are_the_classes_of_the_noisy_inputs():
    """One noise batch: the noise is `stateless_normal(fold_seed(seed, 0))`
    in draw order (input-major), so the counts can be recomputed."""
    smoothed = SmoothedClassifier(step_model(), SIGMA, batch_size=10_000)
    x = np.array([[0.3], [-0.2], [0.0]], "float32")
    seed = tf.constant([5, 6], tf.int32)
    counts = smoothed.sample_counts(x, 500, seed=seed)
    noise = tf.random.stateless_normal(
        (3 * 500, 1), seed=_random.fold_seed(seed, 0)
    )
    noisy = np.repeat(x, 500, axis=0) + SIGMA * np.asarray(noise)
    positive = (noisy[:, 0] > 0).reshape(3, 500).sum(axis=1)
    np.testing.assert_array_equal(counts[:, 1], positive)
    np.testing.assert_array_equal(counts.sum(axis=1), [500, 500, 500])


@pytest.mark.parametrize("batch_size", [1, 7, 64, 5000])
def test_counts_sum_to_n_whatever_the_batch_size(batch_size):
    smoothed = SmoothedClassifier(
        three_class_model(), 0.01, batch_size=batch_size
    )
    x = np.array([[-5.0], [0.0], [5.0]], "float32")
    counts = smoothed.sample_counts(x, 40, seed=0)
    assert counts.dtype == np.int32
    np.testing.assert_array_equal(counts, [[40, 0, 0], [0, 40, 0], [0, 0, 40]])


# ---------------------------------------------------------------- abstention
def test_predict_abstains_when_the_two_top_classes_tie():
    counts = np.array([[50, 50, 0], [30, 0, 30], [60, 40, 0], [100, 0, 0]])
    predictions, p_values = _statistics.predict_from_counts(counts, 0.05)
    assert p_values[0] == 1.0 and p_values[1] == 1.0
    # 60 against 40: p = 0.057 > 0.05, abstain; 100 against 0: class 0.
    np.testing.assert_allclose(p_values[2], stats.binomtest(60, 100).pvalue)
    assert predictions.tolist() == [-1, -1, -1, 0]


def test_certify_abstains_when_the_two_top_classes_tie():
    predictions, radii, lower = _statistics.certify_from_counts(
        np.array([[5, 5]]), np.array([[500, 500]]), SIGMA, 0.001
    )
    assert predictions.tolist() == [-1] and radii.tolist() == [0.0]
    assert lower[0] < 0.5


def test_the_boundary_of_the_base_classifier_abstains():
    """At x = 0 the step model gives each class probability 1/2."""
    smoothed = SmoothedClassifier(step_model(), SIGMA, seed=0)
    x = np.zeros((3, 1), "float32")
    assert smoothed.predict(x, 1000, 0.001).tolist() == [-1, -1, -1]
    predictions, radii = smoothed.certify(x, 100, 1000, 0.001)
    assert predictions.tolist() == [-1, -1, -1]
    assert radii.tolist() == [0.0, 0.0, 0.0]


# ------------------------------------------------------------- closed forms
X_LINE = np.array([[0.2], [0.35], [-0.6], [1.0], [-1.2]], "float32")


@pytest.mark.parametrize("softmax", [False, True])
def test_the_radius_of_the_step_model_is_known_in_closed_form(softmax):
    """`p_A = Phi(|x| / sigma)`, so `sigma * Phi^-1(p_A) = |x|`: the
    certified radius is `|x|` less the Clopper-Pearson slack, and never
    more (with probability 1 - alpha; the seed is fixed)."""
    n, alpha = 20000, 0.001
    smoothed = SmoothedClassifier(step_model(softmax), SIGMA, seed=1)
    predictions, radii = smoothed.certify(X_LINE, 500, n, alpha)
    distance = np.abs(X_LINE[:, 0]).astype("float64")
    np.testing.assert_array_equal(predictions, (X_LINE[:, 0] > 0).astype(int))
    p_a = stats.norm.cdf(distance / SIGMA)
    # Five standard deviations below the expected count, then the bound.
    low_count = np.floor(n * p_a - 5 * np.sqrt(n * p_a * (1 - p_a)))
    low = SIGMA * stats.norm.ppf(
        stats.beta.ppf(alpha, low_count, n - low_count + 1)
    )
    assert np.all(radii <= distance), (radii, distance)
    assert np.all(radii >= low), (radii, low)


def test_the_radius_approaches_the_distance_as_n_grows():
    smoothed = SmoothedClassifier(step_model(), SIGMA, batch_size=20000, seed=2)
    distance = np.abs(X_LINE[:, 0])
    gaps = []
    for n in (500, 5000, 100000):
        _, radii = smoothed.certify(X_LINE, 100, n, 0.001)
        gaps.append(float(np.max(distance - radii)))
    assert gaps[0] > gaps[1] > gaps[2] > 0.0
    assert gaps[2] < 0.06


def test_predict_returns_the_side_of_the_boundary():
    smoothed = SmoothedClassifier(step_model(), SIGMA, seed=0)
    predictions = smoothed.predict(X_LINE, 2000, 0.001)
    np.testing.assert_array_equal(predictions, (X_LINE[:, 0] > 0).astype(int))


# ------------------------------------------------------------- reproducible
def test_same_seed_same_result_call_for_call():
    x = np.array([[0.2], [-0.4], [0.05]], "float32")
    a = SmoothedClassifier(step_model(), SIGMA, seed=4)
    b = SmoothedClassifier(step_model(), SIGMA, seed=4)
    first = [a.certify(x, 20, 300, 0.01), a.certify(x, 20, 300, 0.01)]
    second = [b.certify(x, 20, 300, 0.01), b.certify(x, 20, 300, 0.01)]
    for (p1, r1), (p2, r2) in zip(first, second):
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(r1, r2)
    # The generator advances: the second call draws new noise.
    assert not np.array_equal(first[0][1], first[1][1])
    np.testing.assert_array_equal(
        a.sample_counts(x, 300, seed=9), b.sample_counts(x, 300, seed=9)
    )
    np.testing.assert_array_equal(
        a.predict(x, 300, 0.01, seed=3), a.predict(x, 300, 0.01, seed=3)
    )


def test_new_data_and_new_n_do_not_retrace():
    smoothed = SmoothedClassifier(step_model(), SIGMA, batch_size=64, seed=0)
    rng = np.random.default_rng(0)
    for n in (10, 100, 1000):
        x = rng.normal(size=(4, 1)).astype("float32")
        smoothed.certify(x, n0=n // 10 + 1, n=n, alpha=0.01)
        smoothed.predict(x, n, 0.01)
    assert smoothed._sampler.experimental_get_tracing_count() == 1


def test_logits_and_probabilities_give_the_same_counts():
    x = np.array([[0.1], [-0.3]], "float32")
    logits = SmoothedClassifier(step_model(False), SIGMA)
    probabilities = SmoothedClassifier(step_model(True), SIGMA)
    np.testing.assert_array_equal(
        logits.sample_counts(x, 500, seed=1),
        probabilities.sample_counts(x, 500, seed=1),
    )


def test_mixed_precision_model():
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = three_class_model()
    smoothed = SmoothedClassifier(model, 0.01, seed=0)
    x = np.array([[-5.0], [0.0], [5.0]], "float32")
    assert smoothed.predict(x, 100, 0.001).tolist() == [0, 1, 2]


# -------------------------------------------------------------- arguments
def test_num_classes_is_read_from_the_model_and_checked():
    smoothed = SmoothedClassifier(three_class_model(), SIGMA)
    assert smoothed.num_classes is None
    smoothed.sample_counts(np.zeros((1, 1), "float32"), 3, seed=0)
    assert smoothed.num_classes == 3
    wrong = SmoothedClassifier(three_class_model(), SIGMA, num_classes=5)
    with pytest.raises(ValueError, match="num_classes"):
        wrong.sample_counts(np.zeros((1, 1), "float32"), 3, seed=0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"sigma": SIGMA, "num_classes": 1}, "num_classes"),
        ({"sigma": SIGMA, "batch_size": 0}, "batch_size"),
        ({"sigma": SIGMA, "seed": -1}, "seed"),
    ],
)
def test_invalid_constructor_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        SmoothedClassifier(step_model(), **kwargs)


def test_invalid_call_arguments_are_named():
    smoothed = SmoothedClassifier(step_model(), SIGMA)
    x = np.zeros((2, 1), "float32")
    for kwargs, name in [
        ({"n0": 0, "n": 10, "alpha": 0.1}, "n0"),
        ({"n0": 1, "n": 0, "alpha": 0.1}, "n"),
        ({"n0": 1, "n": 10, "alpha": 0.0}, "alpha"),
        ({"n0": 1, "n": 10, "alpha": 1.0}, "alpha"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            smoothed.certify(x, **kwargs)
    with pytest.raises(ValueError, match="`x`"):
        smoothed.predict(np.array([[np.nan]], "float32"), 10, 0.1)
    with pytest.raises(ValueError, match="`x`"):
        smoothed.predict(np.zeros((0, 1), "float32"), 10, 0.1)
    with pytest.raises(TypeError, match="floating"):
        smoothed.predict(np.zeros((2, 1), "int32"), 10, 0.1)
    with pytest.raises(TypeError, match="`model`"):
        SmoothedClassifier(lambda x: x, SIGMA)


def test_config_rebuilds_the_classifier():
    model = step_model()
    smoothed = SmoothedClassifier(model, SIGMA, num_classes=2, seed=3)
    config = smoothed.get_config()
    assert json.loads(json.dumps(config)) == config
    again = SmoothedClassifier(model, **config)
    x = np.array([[0.1]], "float32")
    np.testing.assert_array_equal(
        smoothed.certify(x, 10, 100, 0.1)[1], again.certify(x, 10, 100, 0.1)[1]
    )
    assert "sigma=0.5" in repr(smoothed)


# --------------------------------------------------- training for smoothing
def robust_and_brittle_features():
    """Feature 1 is +-1 and agrees with the label on 80 % of the points;
    feature 2 is +-0.1 and always agrees. A clean model separates them all
    with feature 2 (margin 0.1); under noise of std 0.5 only feature 1
    carries signal (margin 1 on 80 %)."""
    y = np.arange(200) % 2
    sign = 2.0 * y - 1.0
    agree = np.where(np.arange(200) % 10 < 2, -1.0, 1.0)
    x = np.stack([sign * agree, 0.1 * sign], axis=1).astype("float32")
    return x, y


def train_linear(noise):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((2,))]
    if noise:
        layers.append(keras.layers.GaussianNoise(SIGMA, seed=0))
    layers.append(keras.layers.Dense(2, kernel_initializer="zeros"))
    model = keras.Sequential(layers)
    model.compile(
        keras.optimizers.Adam(0.05),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = robust_and_brittle_features()
    model.fit(
        np.tile(x, (40, 1)),
        np.tile(y, 40),
        batch_size=200,
        epochs=4,
        shuffle=False,
        verbose=0,
    )
    return model


def test_gaussian_noise_training_gives_larger_certified_radii():
    x, y = robust_and_brittle_features()
    reports = {}
    for noise in (False, True):
        model = train_linear(noise)
        smoothed = SmoothedClassifier(model, SIGMA, seed=0)
        reports[noise] = CertificationReport(
            *smoothed.certify(x, 100, 1000, 0.001), y
        )
    clean = train_linear(False)
    # The clean model is perfect on its training points, and brittle.
    assert np.all(np.argmax(clean.predict(x, verbose=0), axis=1) == y)
    assert reports[False].certified_accuracy(0.25) == 0.0
    assert reports[True].certified_accuracy(0.5) >= 0.75
    assert reports[True].radii.mean() > 3 * reports[False].radii.mean()


# ------------------------------------------------------------------- report
def test_report_certified_accuracy_closed_form():
    report = CertificationReport(
        predictions=np.array([2, 0, -1, 1, 1]),
        radii=[0.3, 1.0, 0.0, 0.5, 2.0],
        y=np.eye(3)[[2, 0, 0, 1, 0]],
    )
    assert report.labels.tolist() == [2, 0, 0, 1, 0]
    assert report.abstention_rate == 0.2
    assert report.certified_accuracy(0.0) == 0.6
    assert report.certified_accuracy([0.3, 0.31, 1.0, 1.5]) == [
        0.6,
        0.4,
        0.2,
        0.0,
    ]
    grid, accuracy = report.curve()
    np.testing.assert_allclose(grid, [0.0, 0.3, 0.5, 1.0])
    np.testing.assert_allclose(accuracy, [0.6, 0.6, 0.4, 0.2])
    grid, accuracy = report.curve([0.25, 2.0])
    np.testing.assert_allclose(accuracy, [0.6, 0.0])
    again = CertificationReport.from_dict(
        json.loads(json.dumps(report.to_dict()))
    )
    assert again.certified_accuracy([0.0, 0.5]) == [0.6, 0.4]
    text = report.table([0.0, 0.5])
    assert "60.0%" in text and "40.0%" in text and "20.0% abstained" in text
    assert "radius" in str(report)


def test_report_rejects_inconsistent_inputs():
    with pytest.raises(ValueError, match="`radii`"):
        CertificationReport([0, 1], [0.1], [0, 1])
    with pytest.raises(ValueError, match="`radii`"):
        CertificationReport([0, 1], [0.1, -1.0], [0, 1])
    with pytest.raises(ValueError, match="`y`"):
        CertificationReport([0, 1], [0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="`predictions`"):
        CertificationReport([0.5, 1.0], [0.1, 0.2], [0, 1])
    with pytest.raises(ValueError, match="`predictions`"):
        CertificationReport([-2, 1], [0.1, 0.2], [0, 1])
    with pytest.raises(ValueError, match="`norm`"):
        CertificationReport([0, 1], [0.1, 0.2], [0, 1], norm="l1")
    with pytest.raises(ValueError, match="`radius`"):
        CertificationReport([0], [0.1], [0]).certified_accuracy(-1.0)


def test_report_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    report = CertificationReport([1, 0, -1], [0.9, 0.5, 0.0], [1, 0, 1])
    path = report.plot(str(tmp_path / "certified.png"), title="smoothing")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_docs_example_runs_as_written(tmp_path, monkeypatch, capsys):
    """The python block of docs/certification.md's smoothing section."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "certification.md"
    section = page.read_text().split("## Randomized smoothing", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, str(page), "exec"), namespace)
    report = namespace["report"]
    assert report.num_samples == 100
    assert report.certified_accuracy(0.0) >= 0.8
    assert report.certified_accuracy(0.25) > 0.5
    assert "abstained" in capsys.readouterr().out
    if (tmp_path / "certified_accuracy.png").exists():
        assert report.settings["n"] == 2000
