"""Tests for `LatentSmoothedClassifier`: randomized smoothing in a learned
perturbation set's latent space (Wong and Kolter 2021).

Closed forms first: with the decoder `g(z, x) = x + z` and prior
`N(0, s^2 I)` (`keras_adv.testing.shift_cvae`) latent smoothing with
`sigma` is input smoothing with `s * sigma`, so its counts and
certificates equal `SmoothedClassifier`'s for the same seed, radii scaled
by `s`. For a small non-linear CVAE, `certify` equals an independent
float64 numpy computation of the counts and a scipy computation of the
bound.
"""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_adv import _random
from keras_adv.certification import CertificationReport
from keras_adv.certification import LatentSmoothedClassifier
from keras_adv.certification import SmoothedClassifier
from keras_adv.certification import _statistics
from keras_adv.models import PerturbationCVAE
from keras_adv.testing import shift_cvae
from keras_adv.threat_models import L2Ball
from keras_adv.threat_models import LearnedPerturbationSet

WIDE = (-100.0, 100.0)  # a value range that never clips


def linear(weights, bias):
    """A logits model `x @ weights + bias` on flat inputs."""
    weights = np.asarray(weights, "float32")
    model = keras.Sequential(
        [keras.Input((weights.shape[0],)), keras.layers.Dense(weights.shape[1])]
    )
    model.set_weights([weights, np.asarray(bias, "float32")])
    return model


def step_model():
    """`f(x) = [x > 0]` on one feature."""
    return linear([[-1.0, 1.0]], [0.0, 0.0])


def three_class_model():
    """Three classes of two features, each region reachable under noise."""
    return linear([[2.0, -1.0, 0.0], [0.0, 1.5, -2.0]], [0.0, 0.1, 0.2])


def shift_set(shape, scale=1.0, radius=1.0):
    return LearnedPerturbationSet(
        shift_cvae(shape, scale=scale), radius=radius, value_range=WIDE
    )


# A small CVAE with an input-dependent prior and a non-linear decoder:
# mean = x @ PRIOR_MEAN + b, log_var = x @ PRIOR_LOG_VAR + b',
# g(z, x) = tanh(x @ DEC_X + z @ DEC_Z + b''), members clipped to RANGE.
PRIOR_MEAN = (np.array([[0.5, -0.2], [0.1, 0.3]]), np.array([0.1, -0.1]))
PRIOR_LOG_VAR = (
    np.array([[0.2, 0.0], [0.0, -0.4]]),
    np.array([math.log(0.25), math.log(2.25)]),
)
DEC_X = np.eye(2)
DEC_Z = np.array([[0.8, -0.3], [0.2, 0.6]])
DEC_BIAS = np.array([0.05, -0.05])
RANGE = (-0.6, 0.6)


def _dense(inputs, kernel, bias, activation=None):
    layer = keras.layers.Dense(kernel.shape[1], activation=activation)
    out = layer(inputs)
    layer.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return out


def tiny_cvae(output_dim=2):
    x = keras.Input((2,))
    prior = keras.Model(x, [_dense(x, *PRIOR_MEAN), _dense(x, *PRIOR_LOG_VAR)])
    x, x_tilde = keras.Input((2,)), keras.Input((2,))
    both = keras.layers.Concatenate()([x, x_tilde])
    zeros = (np.zeros((4, 2)), np.zeros(2))
    recognition = keras.Model(
        [x, x_tilde], [_dense(both, *zeros), _dense(both, *zeros)]
    )
    x, z = keras.Input((2,)), keras.Input((2,))
    joined = keras.layers.Concatenate()([x, z])
    kernel = np.concatenate([DEC_X, DEC_Z])[:, :output_dim]
    out = _dense(joined, kernel, DEC_BIAS[:output_dim], activation="tanh")
    decoder = keras.Model([x, z], out)
    return PerturbationCVAE(
        prior, recognition, decoder, reconstruction="gaussian"
    )


def numpy_counts(x, n, sigma, seed, batch_size, num_classes=3):
    """The counts of `tiny_cvae` + `three_class_model` in float64 numpy,
    drawing the noise batch by batch as documented: draw `i` (input
    `i // n`) in batch `i // batch_size`, seeded `fold_seed(seed, b)`."""
    x = x.astype("float64")
    mean = x @ PRIOR_MEAN[0] + PRIOR_MEAN[1]
    log_var = x @ PRIOR_LOG_VAR[0] + PRIOR_LOG_VAR[1]
    std = np.exp(0.5 * np.clip(log_var, -10.0, 10.0))
    weights = np.array([[2.0, -1.0, 0.0], [0.0, 1.5, -2.0]])
    bias = np.array([0.0, 0.1, 0.2])
    counts = np.zeros((len(x), num_classes), "int64")
    total = len(x) * n
    for b, start in enumerate(range(0, total, batch_size)):
        owners = np.arange(start, min(start + batch_size, total)) // n
        noise = tf.random.stateless_normal(
            (len(owners), 2), seed=_random.fold_seed(seed, b)
        )
        u = sigma * np.asarray(noise, "float64")
        z = mean[owners] + std[owners] * u
        members = np.tanh(x[owners] @ DEC_X + z @ DEC_Z + DEC_BIAS)
        members = np.clip(members, *RANGE)
        classes = np.argmax(members @ weights + bias, axis=1)
        np.add.at(counts, (owners, classes), 1)
    return counts


def scipy_certify(selection, estimation, sigma, alpha):
    """CERTIFY with scipy.stats, one input at a time."""
    predictions, radii = [], []
    for sel, est in zip(selection, estimation):
        guess = int(np.argmax(sel))
        n_a, n = int(est[guess]), int(est.sum())
        lower = stats.beta.ppf(alpha, n_a, n - n_a + 1) if n_a else 0.0
        abstain = lower < 0.5
        predictions.append(-1 if abstain else guess)
        radii.append(0.0 if abstain else sigma * stats.norm.ppf(lower))
    return np.array(predictions), np.array(radii)


# ------------------------------------------------- identity-like decoder
def test_the_shift_decoder_gives_input_smoothing_exactly():
    """`g(z, x) = x + z`, prior N(0, I): the same noise reaches the same
    inputs, so counts, classes and radii equal SmoothedClassifier's."""
    x = np.array([[-0.8, 0.3], [0.2, 0.1], [1.0, -1.2], [0.0, 0.0]], "f4")
    latent = LatentSmoothedClassifier(
        three_class_model(), shift_set((2,)), 0.6, batch_size=300, seed=5
    )
    plain = SmoothedClassifier(three_class_model(), 0.6, batch_size=300, seed=5)
    np.testing.assert_array_equal(
        latent.sample_counts(x, 700, seed=3),
        plain.sample_counts(x, 700, seed=3),
    )
    for smoothed in (latent, plain):
        smoothed.result = smoothed.certify(x, 50, 1000, 0.001)
    np.testing.assert_array_equal(latent.result[0], plain.result[0])
    np.testing.assert_array_equal(latent.result[1], plain.result[1])
    assert np.all(latent.result[1][latent.result[0] >= 0] > 0.0)
    np.testing.assert_array_equal(
        latent.predict(x, 500, 0.01, seed=1), plain.predict(x, 500, 0.01, 1)
    )


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_a_prior_scale_rescales_the_radius(scale):
    """Prior std `s` (a power of two, so `s * (sigma * e)` is exact): latent
    sigma `sigma` is input sigma `s * sigma`, latent radius = input / s."""
    x = np.array([[0.4, -0.2], [-1.0, 0.5], [0.3, 0.9]], "float32")
    latent = LatentSmoothedClassifier(
        three_class_model(), shift_set((2,), scale), 0.5, seed=2
    )
    plain = SmoothedClassifier(three_class_model(), 0.5 * scale, seed=2)
    p_latent, r_latent = latent.certify(x, 50, 2000, 0.001)
    p_plain, r_plain = plain.certify(x, 50, 2000, 0.001)
    np.testing.assert_array_equal(p_latent, p_plain)
    np.testing.assert_allclose(r_latent * scale, r_plain, rtol=1e-12)


def test_the_step_model_radius_is_known_in_closed_form():
    """`f(x + s u) = [x + s u > 0]`: `p_A = Phi(|x| / (s sigma))`, so the
    latent radius tends to `|x| / s` and stays below it."""
    scale, sigma, n, alpha = 0.5, 0.8, 20000, 0.001
    x = np.array([[0.2], [-0.35], [0.6]], "float32")
    smoothed = LatentSmoothedClassifier(
        step_model(), shift_set((1,), scale), sigma, seed=1
    )
    predictions, radii = smoothed.certify(x, 200, n, alpha)
    distance = np.abs(x[:, 0]).astype("float64") / scale
    np.testing.assert_array_equal(predictions, (x[:, 0] > 0).astype(int))
    p_a = stats.norm.cdf(distance / sigma)
    low_count = np.floor(n * p_a - 5 * np.sqrt(n * p_a * (1 - p_a)))
    low = sigma * stats.norm.ppf(
        stats.beta.ppf(alpha, low_count, n - low_count + 1)
    )
    assert np.all(radii <= distance) and np.all(radii >= low), radii


# ---------------------------------------------- an independent computation
@pytest.mark.parametrize("batch_size", [333, 100000])
def test_certify_equals_an_independent_numpy_and_scipy_computation(
    batch_size,
):
    x = np.array([[0.3, -0.2], [-0.4, 0.5], [0.1, 0.1], [0.5, 0.4]], "f4")
    sigma, n0, n, alpha, seed = 0.9, 60, 1500, 0.01, 17
    learned = LearnedPerturbationSet(tiny_cvae(), radius=1.0, value_range=RANGE)
    smoothed = LatentSmoothedClassifier(
        three_class_model(), learned, sigma, batch_size=batch_size
    )
    predictions, radii = smoothed.certify(x, n0, n, alpha, seed=seed)
    stateless = _random.as_stateless_seed(seed)
    selection = numpy_counts(
        x, n0, sigma, _random.fold_seed(stateless, 0), batch_size
    )
    estimation = numpy_counts(
        x, n, sigma, _random.fold_seed(stateless, 1), batch_size
    )
    np.testing.assert_array_equal(
        smoothed.sample_counts(x, n, seed=_random.fold_seed(stateless, 1)),
        estimation,
    )
    expected = scipy_certify(selection, estimation, sigma, alpha)
    np.testing.assert_array_equal(predictions, expected[0])
    np.testing.assert_allclose(radii, expected[1], rtol=1e-9)
    # The noise reaches the classifier through the decoder: not every
    # draw lands in one class, and some input is certified.
    assert np.all(estimation.max(axis=1) < n) and np.any(radii > 0)


# ---------------------------------------------------------- reproducible
def test_same_seed_same_result_call_for_call():
    x = np.array([[0.3, -0.2], [-0.4, 0.5]], "float32")

    def build():
        learned = LearnedPerturbationSet(tiny_cvae(), 1.0, value_range=RANGE)
        return LatentSmoothedClassifier(
            three_class_model(), learned, 0.9, batch_size=64, seed=4
        )

    a, b = build(), build()
    first = [a.certify(x, 20, 400, 0.01), a.certify(x, 20, 400, 0.01)]
    second = [b.certify(x, 20, 400, 0.01), b.certify(x, 20, 400, 0.01)]
    for (p1, r1), (p2, r2) in zip(first, second):
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(first[0][1], first[1][1])  # fresh noise
    np.testing.assert_array_equal(
        a.sample_counts(x, 300, seed=9), b.sample_counts(x, 300, seed=9)
    )


def test_new_data_and_new_n_do_not_retrace():
    smoothed = LatentSmoothedClassifier(
        step_model(), shift_set((1,)), 0.5, batch_size=64, seed=0
    )
    rng = np.random.default_rng(0)
    for n in (10, 100, 1000):
        x = rng.normal(size=(4, 1)).astype("float32")
        smoothed.certify(x, n0=n // 10 + 1, n=n, alpha=0.01)
        smoothed.predict(x, n, 0.01)
    assert smoothed._sampler.experimental_get_tracing_count() == 1


# ------------------------------------------------------------ abstention
def test_certify_abstains_when_the_two_top_classes_tie():
    smoothed = LatentSmoothedClassifier(step_model(), shift_set((1,)), 0.5)
    selection = np.array([[5, 5], [9, 1]])
    estimation = np.array([[500, 500], [0, 1000]])  # row 2: c_A never seen
    draws = iter([selection, estimation])
    smoothed._counts = lambda x, n, seed: next(draws)
    predictions, radii = smoothed.certify(
        np.zeros((2, 1), "float32"), 10, 1000, 0.001
    )
    assert predictions.tolist() == [-1, -1] and radii.tolist() == [0.0, 0.0]


def test_the_decoded_boundary_abstains():
    """At x = 0 every latent draw lands on either side with probability
    1/2: PREDICT and CERTIFY abstain."""
    smoothed = LatentSmoothedClassifier(
        step_model(), shift_set((1,)), 0.5, seed=0
    )
    x = np.zeros((3, 1), "float32")
    assert smoothed.predict(x, 1000, 0.001).tolist() == [-1, -1, -1]
    predictions, radii = smoothed.certify(x, 100, 1000, 0.001)
    assert predictions.tolist() == [-1] * 3 and radii.tolist() == [0.0] * 3


# ----------------------------------------------------- meaning in the set
def test_prior_mass_is_the_chi_squared_cdf():
    radius = np.array([0.0, 0.5, 1.0, 3.0, 11.3, 20.0])
    for dim in (1, 2, 8, 128):
        np.testing.assert_allclose(
            _statistics.gaussian_mass_within(radius, dim),
            stats.chi2.cdf(radius**2, dim),
            rtol=1e-10,
            atol=1e-300,
        )
    smoothed = LatentSmoothedClassifier(
        three_class_model(), shift_set((2,)), 0.5
    )
    with pytest.raises(ValueError, match="first call"):
        smoothed.prior_mass(1.0)
    smoothed.predict(np.zeros((1, 2), "float32"), 10, 0.1, seed=0)
    assert smoothed.latent_dim == 2
    # In 2-D, P(||u|| <= r) = 1 - exp(-r^2 / 2).
    np.testing.assert_allclose(
        smoothed.prior_mass([1.0, 2.0]), 1 - np.exp(-np.array([0.5, 2.0]))
    )
    with pytest.raises(ValueError, match="`radius`"):
        smoothed.prior_mass(-1.0)


def test_the_report_is_a_latent_certification_report(tmp_path):
    x = np.array([[0.9], [-0.3], [0.05], [-1.5]], "float32")
    y = np.array([1, 0, 0, 0])
    smoothed = LatentSmoothedClassifier(
        step_model(), shift_set((1,), radius=0.25), 0.5, seed=0
    )
    report = smoothed.report(x, y, 100, 2000, 0.001, seed=8)
    predictions, radii = smoothed.certify(x, 100, 2000, 0.001, seed=8)
    np.testing.assert_array_equal(report.predictions, predictions)
    np.testing.assert_array_equal(report.radii, radii)
    assert report.norm == "latent"
    assert report.settings == {
        "sigma": 0.5,
        "num_classes": 2,
        "batch_size": 1000,
        "seed": 0,
        "n0": 100,
        "n": 2000,
        "alpha": 0.001,
        "latent_dim": 1,
        "set_radius": 0.25,
    }
    # Certified on the whole set: correct with a radius >= 0.25.
    correct = predictions == y
    assert report.certified_accuracy(0.25) == np.mean(correct & (radii >= 0.25))
    # |x| = 0.9, 0.3 and 1.5 reach the set's radius, 0.05 does not.
    assert report.certified_accuracy(0.25) == 0.75
    text = report.table([0.0, 0.25, 0.5])
    assert "whitened latent radius" in text and "prior mass" in text
    assert "100.0%" in text and "200.0%" in text  # radius / set radius
    mass = f"{stats.chi2.cdf(0.25**2, 1):10.3g}"
    assert mass in text
    assert "0.250" in report.table()  # the set's radius is on the grid
    again = CertificationReport.from_dict(
        json.loads(json.dumps(report.to_dict()))
    )
    assert again.norm == "latent" and again.settings == report.settings
    assert again.table() == report.table()
    pytest.importorskip("matplotlib")
    path = report.plot(str(tmp_path / "latent.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_l2_report_is_the_same_report_of_input_radii():
    x = np.array([[0.9], [-0.3]], "float32")
    smoothed = SmoothedClassifier(step_model(), 0.5, seed=0)
    report = smoothed.report(x, [1, 0], 50, 500, 0.01, seed=2)
    expected = CertificationReport(
        *smoothed.certify(x, 50, 500, 0.01, seed=2),
        [1, 0],
        settings={**smoothed.get_config(), "n0": 50, "n": 500, "alpha": 0.01},
    )
    assert report.to_dict() == expected.to_dict()
    assert report.norm == "l2" and "prior mass" not in report.table()


def test_the_latent_classifier_is_not_an_input_space_smoother():
    """Code that takes a SmoothedClassifier reads its radii as input L2
    radii; latent radii must not pass for them."""
    smoothed = LatentSmoothedClassifier(step_model(), shift_set((1,)), 0.5)
    assert not isinstance(smoothed, SmoothedClassifier)
    assert (smoothed.norm, SmoothedClassifier.norm) == ("latent", "l2")


# --------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": -0.5}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"sigma": 0.5, "num_classes": 1}, "num_classes"),
        ({"sigma": 0.5, "batch_size": 0}, "batch_size"),
        ({"sigma": 0.5, "seed": -1}, "seed"),
    ],
)
def test_invalid_constructor_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        LatentSmoothedClassifier(step_model(), shift_set((1,)), **kwargs)


def test_a_perturbation_set_that_is_not_learned_is_refused():
    for wrong in (shift_cvae((1,)), L2Ball(1.0), None):
        with pytest.raises(TypeError, match="`perturbation_set`"):
            LatentSmoothedClassifier(step_model(), wrong, 0.5)
    with pytest.raises(TypeError, match="`model`"):
        LatentSmoothedClassifier(lambda x: x, shift_set((1,)), 0.5)


def test_a_decoder_of_the_wrong_shape_is_named():
    """The decoder outputs 1 feature for inputs of 2: the members are not
    inputs of the classifier."""
    learned = LearnedPerturbationSet(tiny_cvae(output_dim=1), 1.0, RANGE)
    smoothed = LatentSmoothedClassifier(step_model(), learned, 0.5, seed=0)
    x = np.zeros((2, 2), "float32")
    with pytest.raises(ValueError, match="`perturbation_set`.*decoded shape"):
        smoothed.certify(x, 10, 100, 0.01)
    # Inputs the CVAE cannot take at all: named too.
    smoothed = LatentSmoothedClassifier(
        three_class_model(), shift_set((2,)), 0.5
    )
    with pytest.raises(ValueError, match="`perturbation_set`"):
        smoothed.predict(np.zeros((2, 3), "float32"), 10, 0.1)


def test_invalid_call_arguments_are_named():
    smoothed = LatentSmoothedClassifier(step_model(), shift_set((1,)), 0.5)
    x = np.zeros((2, 1), "float32")
    for kwargs, name in [
        ({"n0": 0, "n": 10, "alpha": 0.1}, "n0"),
        ({"n0": 1, "n": 0, "alpha": 0.1}, "n"),
        ({"n0": 1, "n": 10, "alpha": 1.0}, "alpha"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            smoothed.certify(x, **kwargs)
    with pytest.raises(ValueError, match="`x`"):
        smoothed.predict(np.array([[np.inf]], "float32"), 10, 0.1)


def test_config_rebuilds_the_classifier():
    """Not a Keras object (it holds a model and a CVAE, saved on their
    own as .keras files, like SmoothedClassifier's model), so no
    registration: `get_config` holds the smoothing settings, and
    `LatentSmoothedClassifier(model, perturbation_set, **config)`
    rebuilds the same classifier."""
    model, learned = step_model(), shift_set((1,))
    smoothed = LatentSmoothedClassifier(model, learned, 0.5, 2, 128, seed=3)
    config = smoothed.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config == {
        "sigma": 0.5,
        "num_classes": 2,
        "batch_size": 128,
        "seed": 3,
    }
    again = LatentSmoothedClassifier(model, learned, **config)
    x = np.array([[0.1], [-0.7]], "float32")
    for first, second in zip(
        smoothed.certify(x, 10, 300, 0.1), again.certify(x, 10, 300, 0.1)
    ):
        np.testing.assert_array_equal(first, second)
    assert repr(smoothed).startswith("LatentSmoothedClassifier(")
    assert "sigma=0.5" in repr(smoothed)


# -------------------------------------------------------------------- docs
@pytest.mark.slow
def test_the_docs_example_runs_as_written(monkeypatch, tmp_path, capsys):
    """The first python block of docs/perturbation_sets.md's section 7
    (a small STN CVAE and classifier trained on the MNIST subset; about
    a minute of CPU)."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "perturbation_sets.md"
    section = page.read_text().split(
        "## 7. Certifying against a learned perturbation set", 1
    )[1]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, str(page), "exec"), namespace)
    report, smoothed = namespace["report"], namespace["smoothed"]
    out = capsys.readouterr().out
    with capsys.disabled():
        print(out)
    assert report.num_samples == 20 and report.norm == "latent"
    assert report.settings["set_radius"] == namespace["cal"].radius
    assert smoothed.latent_dim == 16
    # The radius is capped by n: sigma * Phi^-1(alpha^(1/n)).
    assert report.radii.max() <= stats.norm.ppf(0.01 ** (1 / 500)) + 1e-9
    assert "whole set:" in out and "prior mass" in out
