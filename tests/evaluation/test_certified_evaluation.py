"""Tests for certified accuracy in `evaluate_robustness` and its report."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv import _figures
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.certification import SmoothedClassifier
from keras_adv.certification import verified_accuracy
from keras_adv.evaluation import RobustnessReport
from keras_adv.evaluation import _certified
from keras_adv.evaluation import _plots
from keras_adv.evaluation import evaluate_robustness
from keras_adv.testing import linear_classifier

BOUNDS = ["ibp", "crown_ibp", "crown"]
EPS_LINEAR = [0.0, 0.05, 0.1, 0.2]


# ------------------------------------------------------------ closed form
@pytest.fixture(scope="module")
def binary_problem():
    """A 2-class linear model on 8 features: every figure in closed form.

    Over the L-inf ball the margin `z_y - z_other` falls by at most
    `eps * ||w_0 - w_1||_1`, over the L2 ball by `eps * ||w_0 - w_1||_2`;
    FGSM (L-inf) and PGD without random start (L2) reach those minima, and
    the bounds are exact for a linear model (IBP with the last layer
    folded into the margin; CROWN's backward pass for L2). A sample is
    robust, and verified, iff its clean margin exceeds that drop. The
    value range is wide enough that nothing is clipped.
    """
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 2)).astype("float32")
    b = np.array([0.1, -0.1], "float32")
    x = rng.uniform(-1.0, 1.0, size=(400, 8)).astype("float32")
    y = (x @ rng.normal(size=8) + 0.3 * x @ (w[:, 0] - w[:, 1]) < 0).astype(
        "int64"
    )
    logits = x.astype("float64") @ w + b
    margin = logits[np.arange(len(y)), y] - logits[np.arange(len(y)), 1 - y]
    diff = w[:, 0] - w[:, 1]
    drops = {
        "linf": float(np.abs(diff).sum()),
        "l2": float(np.linalg.norm(diff)),
    }
    # Drop the few samples within float32 noise of a threshold.
    thresholds = np.array(
        [d * e for d in drops.values() for e in EPS_LINEAR], "float64"
    )
    keep = np.min(np.abs(margin[:, None] - thresholds), axis=1) > 1e-3
    return linear_classifier(w, b), x[keep], y[keep], margin[keep], drops


def test_linear_linf_certified_equals_the_attacks_and_closed_form(
    binary_problem,
):
    model, x, y, margin, drops = binary_problem
    report = evaluate_robustness(
        model,
        (x, y),
        attacks={"fgsm": FGSM(value_range=(-10.0, 10.0))},
        epsilons=EPS_LINEAR,
        certify=BOUNDS,
        checks=False,
        verbose=0,
    )
    expected = [float(np.mean(margin > e * drops["linf"])) for e in EPS_LINEAR]
    assert report.clean_accuracy < 0.9  # some samples are wrong already
    assert report.attacks["fgsm"]["accuracy"] == pytest.approx(expected)
    assert list(report.certified) == BOUNDS
    for method in BOUNDS:
        entry = report.certified[method]
        assert entry["method"] == method
        assert entry["norm"] == "linf"
        assert entry["settings"] == {"value_range": [-10.0, 10.0]}
        assert entry["broken"] == [0] * len(EPS_LINEAR)
        np.testing.assert_allclose(entry["accuracy"], expected, atol=1e-12)
    # The bracket closes: proof and attack agree.
    assert report.bracket(0.1) == (
        f"robust accuracy at eps 0.1 (linf) is exactly "
        f"{100 * expected[2]:.1f}%: certified (ibp) and reached by an "
        "attack (fgsm)."
    )


def test_linear_l2_crown_is_exact_ibp_is_looser(binary_problem):
    model, x, y, margin, drops = binary_problem
    pgd = PGD(
        norm="l2", steps=10, random_start=False, value_range=(-10.0, 10.0)
    )
    report = evaluate_robustness(
        model,
        (x, y),
        attacks={"pgd": pgd},
        epsilons=EPS_LINEAR,
        certify=["crown_ibp", "ibp"],
        checks=False,
        verbose=0,
    )
    expected = [float(np.mean(margin > e * drops["l2"])) for e in EPS_LINEAR]
    assert report.attacks["pgd"]["accuracy"] == pytest.approx(expected)
    np.testing.assert_allclose(
        report.certified["crown_ibp"]["accuracy"], expected, atol=1e-12
    )
    # IBP starts from the L2 ball's bounding box: sound, not exact.
    ibp = report.certified["ibp"]["accuracy"]
    assert all(c <= e for c, e in zip(ibp, expected, strict=True))
    assert ibp[-1] < expected[-1]
    assert report.certified_accuracy(0.2) == expected[-1]  # the best bound
    assert report.certified_accuracy(0.2, "ibp") == ibp[-1]


# -------------------------------------------------------- a ReLU network
@pytest.fixture(scope="module")
def mlp_mnist():
    """A one-hidden-layer ReLU network, one epoch on the subset."""
    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
    return model, x_test[:150], y_test[:150]


MLP_EPS = [0.0, 0.005, 0.02, 0.1]


@pytest.fixture(scope="module")
def mlp_report(mlp_mnist):
    model, x, y = mlp_mnist
    # A dataset of single samples cut by max_samples: "the same samples"
    # are the first 120, in batches of 50 (the last one short).
    data = tf.data.Dataset.from_tensor_slices((x, y))
    return evaluate_robustness(
        model,
        data,
        attacks=["fgsm", PGD(steps=5, seed=0)],
        epsilons=MLP_EPS,
        batch_size=50,
        max_samples=120,
        certify=BOUNDS,
        verbose=0,
    )


def test_certified_column_is_verified_accuracy_on_the_same_samples(
    mlp_mnist, mlp_report
):
    model, x, y = mlp_mnist
    assert mlp_report.num_samples == 120
    for method in BOUNDS:
        expected = [
            verified_accuracy(
                model, x[:120], y[:120], eps, method=method, batch_size=50
            )
            for eps in MLP_EPS
        ]
        assert mlp_report.certified[method]["accuracy"] == expected
    # Not vacuous and not trivial: something is verified at a small eps,
    # and the tighter methods verify more.
    ibp, crown = (
        mlp_report.certified[m]["accuracy"][1] for m in ("ibp", "crown")
    )
    assert 0.0 < ibp <= mlp_report.certified["crown_ibp"]["accuracy"][1]
    assert mlp_report.certified["crown_ibp"]["accuracy"][1] <= crown


def test_certified_never_exceeds_any_attack(mlp_report):
    for method, entry in mlp_report.certified.items():
        for i, eps in enumerate(MLP_EPS):
            certified = entry["accuracy"][i]
            assert certified <= mlp_report.worst_case(eps), (method, eps)
            for name in mlp_report.attacks:
                assert certified <= mlp_report.accuracy(name, eps)


def test_eps_zero_certified_is_the_clean_accuracy(mlp_report):
    # At eps 0 the input box is the point x: the margin's lower bound is
    # the margin itself, positive iff the prediction is y.
    for method in BOUNDS:
        assert mlp_report.certified_accuracy(0.0, method) == (
            mlp_report.clean_accuracy
        )


def test_bracket_and_views_name_the_certificates(mlp_report):
    eps = MLP_EPS[1]
    lower = mlp_report.certified_accuracy(eps)
    best = max(BOUNDS, key=lambda m: mlp_report.certified_accuracy(eps, m))
    upper = mlp_report.worst_case(eps)
    text = mlp_report.bracket(eps)
    if lower < upper:
        assert text == (
            f"robust accuracy at eps {eps:g} (linf) lies between "
            f"{100 * lower:.1f}% (certified, {best}) and {100 * upper:.1f}% "
            f"({_upper_label(mlp_report, eps)})."
        )
    table = mlp_report.table()
    markdown = mlp_report.to_markdown()
    for method in BOUNDS:
        cells = "".join(
            f"{100 * a:6.1f}%".rjust(9)
            for a in mlp_report.certified[method]["accuracy"]
        )
        assert f"certified {method} (linf)" in table
        assert any(
            line.startswith(f"certified {method} (linf)")
            and line.endswith(cells)
            for line in table.splitlines()
        )
        row = " | ".join(
            f"{100 * a:.1f}%" for a in mlp_report.certified[method]["accuracy"]
        )
        assert f"| certified {method} (linf) | {row} |" in markdown
    assert text in table
    assert f"- {text}" in markdown


def _upper_label(report, eps):
    i = report.epsilons.index(eps)
    reaching = [
        name
        for name, entry in report.attacks.items()
        if entry["accuracy"][i] == report.robust_accuracy[i]
    ]
    labels = {"fgsm": "fgsm", "pgd": "pgd-5"}
    if len(reaching) == 1:
        return labels[reaching[0]]
    return "worst case of fgsm, pgd-5"


def test_report_round_trips_through_json(mlp_report, tmp_path):
    path = tmp_path / "report.json"
    mlp_report.to_json(path)
    rebuilt = RobustnessReport.from_dict(json.loads(path.read_text()))
    assert rebuilt.to_dict() == mlp_report.to_dict()
    assert rebuilt.certified == mlp_report.certified
    assert rebuilt.table() == mlp_report.table()
    assert rebuilt.bracket(0.02) == mlp_report.bracket(0.02)
    assert rebuilt.certified_accuracy(0.02, "crown") == (
        mlp_report.certified_accuracy(0.02, "crown")
    )
    # Reports written before certification load, without certified rows.
    old = mlp_report.to_dict()
    del old["certified"]
    plain = RobustnessReport.from_dict(old)
    assert plain.certified == {}
    assert "certified" not in plain.table()
    with pytest.raises(ValueError, match="no certified figures"):
        plain.certified_accuracy(0.02)
    assert plain.bracket(0.02).endswith(
        "no certificate of the model gives a lower bound."
    )


def test_plot_draws_dashed_certified_curves(mlp_report, tmp_path):
    if not _figures.has_matplotlib():
        pytest.skip("matplotlib is not installed")
    fig = _figures.figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    _plots._certified_curves(ax, mlp_report)
    dashed = {
        line.get_label(): [y / 100.0 for y in line.get_ydata()]
        for line in ax.get_lines()
        if line.get_linestyle() == "--"
    }
    assert dashed == {
        f"certified: {m} (linf)": pytest.approx(
            mlp_report.certified[m]["accuracy"]
        )
        for m in BOUNDS
    }
    path = mlp_report.plot(str(tmp_path / "robustness.png"))
    with open(path, "rb") as f:
        assert f.read(4) == b"\x89PNG"


def test_autoattack_schedule_and_certificates_agree_sample_by_sample():
    # AutoAttack runs after the batches over all samples: its per-sample
    # results must line up with the batches' certificates, or the
    # soundness check would fire. IBP is exact on a linear model.
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 4)).astype("float32")
    model = linear_classifier(w)
    x = rng.uniform(0.3, 0.7, size=(40, 16)).astype("float32")
    y = np.argmax(x @ w, axis=1)
    y[:4] = (y[:4] + 1) % 4
    attack = keras_adv.attacks.AutoAttack(eps=0.02, seed=0)
    attack.components = attack.components[:1]  # APGD-CE
    report = evaluate_robustness(
        model,
        (x, y),
        {"autoattack": attack, "fgsm": FGSM()},
        epsilons=[0.0, 0.02],
        batch_size=16,
        certify="ibp",
        checks=False,
        verbose=0,
    )
    certified = report.certified_accuracy(0.02)
    assert 0.0 < certified <= report.accuracy("autoattack", 0.02)
    assert certified == verified_accuracy(model, x, y, 0.02)


# ------------------------------------------------------------ soundness
def _always_verified(monkeypatch):
    def verified(self, x, y, epsilons, seed):
        return np.ones((len(epsilons), len(x)), bool)

    monkeypatch.setattr(_certified.BoundCertificate, "masks", verified)


def _half_line():
    """Class 0 iff x > 0.5."""
    return linear_classifier([[1.0, -1.0]], [-0.5, 0.5])


# Sample 2 is wrong from the start; FGSM at eps 0.1 flips sample 3.
HALF_X = np.array([[0.9], [0.7], [0.1], [0.55]], "float32")
HALF_Y = np.array([0, 0, 0, 0])


def test_a_broken_certificate_raises_naming_the_sample(monkeypatch):
    model, x, y = _half_line(), HALF_X, HALF_Y
    _always_verified(monkeypatch)
    with pytest.raises(RuntimeError) as info:
        evaluate_robustness(
            model,
            (x, y),
            attacks="fgsm",
            epsilons=[0.0, 0.1],
            certify="ibp",
            checks=False,
            verbose=0,
        )
    message = str(info.value)
    assert (
        "'ibp' verifies sample 2 at eps 0 but the clean input changes its "
        "prediction"
    ) in message
    assert "'ibp' verifies sample 2 at eps 0.1 but attack 'fgsm'" in message
    assert "'ibp' verifies sample 3 at eps 0.1 but attack 'fgsm'" in message
    assert "soundness bug" in message


def test_under_mixed_precision_a_broken_certificate_warns(monkeypatch):
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(2, dtype="mixed_float16")]
    )
    model.set_weights(_half_line().get_weights())
    x, y = HALF_X, HALF_Y
    _always_verified(monkeypatch)
    with pytest.warns(UserWarning, match="float16 or bfloat16"):
        report = evaluate_robustness(
            model,
            (x, y),
            attacks="fgsm",
            epsilons=[0.0, 0.1],
            certify="ibp",
            checks=False,
            verbose=0,
        )
    # Broken samples do not count: certified stays below the attack.
    assert report.certified["ibp"]["broken"] == [1, 2]
    assert report.certified_accuracy(0.1) == report.worst_case(0.1) == 0.5
    assert report.certified_accuracy(0.0) == report.clean_accuracy == 0.75
    assert (
        "! ibp: verified samples broken by an attack, not counted (mixed "
        "precision): 1 at eps 0, 2 at eps 0.1"
    ) in report.table()


# ------------------------------------------------------------ smoothing
@pytest.fixture(scope="module")
def line_model():
    """`x -> (-x, x)`: class 1 iff x > 0; the smoothed classifier's radius
    is |x| (Cohen et al.'s closed form for a half-space)."""
    return linear_classifier([[-1.0, 1.0]])


def test_smoothing_certifies_at_the_l2_radius(line_model):
    x = np.array([[1.0], [-0.5], [0.02], [0.3], [-0.2], [0.7]], "float32")
    y = np.array([1, 0, 1, 1, 1, 1])  # x = -0.2 is labelled wrongly
    smoothed = SmoothedClassifier(line_model, sigma=0.5, seed=0)
    epsilons = [0.0, 0.1, 0.25, 0.6]
    options = {"n0": 50, "n": 2000, "alpha": 0.01}
    pgd = PGD(norm="l2", steps=5, value_range=(-2.0, 2.0))
    report = evaluate_robustness(
        line_model,
        (x, y),
        attacks={"pgd": pgd},
        epsilons=epsilons,
        certify=smoothed,
        certify_options=options,
        checks=False,
        seed=3,
        verbose=0,
    )
    entry = report.certified["smoothing"]
    # The same certify call, with the seed of certificate 0 after one
    # attack on batch 0: [seed + 1, 0].
    predictions, radii = smoothed.certify(
        x, seed=np.array([4, 0], "int32"), **options
    )
    expected = [
        float(np.mean((predictions == y) & (radii >= e))) for e in epsilons
    ]
    assert entry["accuracy"] == expected
    assert entry["method"] == "smoothing"
    assert entry["norm"] == "l2"
    assert entry["settings"] == {
        "sigma": 0.5,
        **options,
        "abstention_rate": float(np.mean(predictions == -1)),
    }
    assert "broken" not in entry
    # The radii approach |x|: x = 1.0 certified at 0.6, x = 0.3 not.
    assert radii[0] > 0.6 and radii[3] < 0.3
    text = report.bracket(0.25)
    assert text.startswith("robust accuracy at eps 0.25 (l2) is at most")
    assert (
        "The smoothed classifier (smoothing, sigma 0.5) is certified on "
        f"{100 * expected[2]:.1f}% at L2 radius 0.25"
    ) in text
    # Only smoothing in the report: method=None gives its figure.
    assert report.certified_accuracy(0.25) == expected[2]
    assert "certified smoothing sigma=0.5 (l2)" in report.table()


def test_smoothing_is_refused_for_linf_and_other_models(line_model):
    x = np.array([[0.5], [-0.5]], "float32")
    y = np.array([1, 0])
    smoothed = SmoothedClassifier(line_model, sigma=0.5, seed=0)
    kwargs = {"epsilons": [0.1], "checks": False, "verbose": 0}
    with pytest.raises(ValueError, match=r"`certify`.*certifies L2 balls"):
        evaluate_robustness(
            line_model,
            (x, y),
            attacks=FGSM(value_range=(-1.0, 1.0)),
            certify=smoothed,
            **kwargs,
        )
    other = linear_classifier([[-1.0, 1.0]])
    with pytest.raises(ValueError, match=r"`certify`.*of the evaluated model"):
        evaluate_robustness(
            other,
            (x, y),
            attacks=PGD(norm="l2", value_range=(-1.0, 1.0)),
            certify=smoothed,
            **kwargs,
        )


# ------------------------------------------------------------ arguments
@pytest.mark.parametrize(
    "certify, error, match",
    [
        ("ipb", ValueError, r"`certify`.*Did you mean 'ibp'\?"),
        ("crown-ib", ValueError, r"`certify`.*Did you mean 'crown_ibp'\?"),
        (["ibp", "smothing"], ValueError, r"Did you mean 'smoothing'\?"),
        ("smoothing", ValueError, r"`certify`.*SmoothedClassifier\(model"),
        (3, TypeError, r"`certify`"),
        ([], TypeError, r"`certify`"),
        ([None], TypeError, r"`certify`"),
    ],
)
def test_bad_certify_is_refused_by_name(certify, error, match):
    model = linear_classifier([[1.0, -1.0]])
    x, y = np.array([[0.9]], "float32"), np.array([0])
    with pytest.raises(error, match=match):
        evaluate_robustness(
            model, (x, y), epsilons=[0.1], certify=certify, verbose=0
        )


def test_aliases_and_case_are_accepted():
    model = linear_classifier([[1.0, -1.0]])
    x, y = np.array([[0.9], [0.1]], "float32"), np.array([0, 1])
    report = evaluate_robustness(
        model,
        (x, y),
        epsilons=[0.1],
        certify=["CROWN-IBP", "crown_ibp", "IBP"],  # the old spelling too
        checks=False,
        verbose=0,
    )
    assert list(report.certified) == ["crown_ibp", "ibp"]


def test_bad_certify_settings_are_refused_by_name(line_model):
    x, y = np.array([[0.5]], "float32"), np.array([1])
    l2 = {"pgd": PGD(norm="l2", value_range=(-1.0, 1.0))}
    kwargs = {"epsilons": [0.1], "checks": False, "verbose": 0}
    with pytest.raises(ValueError, match=r"`certify`.*one norm"):
        evaluate_robustness(
            line_model,
            (x, y),
            attacks={"fgsm": FGSM(value_range=(-1.0, 1.0)), **l2},
            certify="ibp",
            **kwargs,
        )
    with pytest.raises(ValueError, match=r"`certify_options`"):
        evaluate_robustness(
            line_model,
            (x, y),
            attacks=l2,
            certify="ibp",
            certify_options={"n": 10},
            **kwargs,
        )
    smoothed = SmoothedClassifier(line_model, sigma=0.5, seed=0)
    with pytest.raises(ValueError, match=r"Did you mean 'n0' for 'n_0'\?"):
        evaluate_robustness(
            line_model,
            (x, y),
            attacks=l2,
            certify=smoothed,
            certify_options={"n_0": 10},
            **kwargs,
        )
    with pytest.raises(ValueError, match=r"certify_options\['alpha'\]"):
        evaluate_robustness(
            line_model,
            (x, y),
            attacks=l2,
            certify=smoothed,
            certify_options={"alpha": 1.5},
            **kwargs,
        )
    report = RobustnessReport.from_dict(
        evaluate_robustness(
            line_model, (x, y), attacks=l2, certify="ibp", **kwargs
        ).to_dict()
    )
    with pytest.raises(ValueError, match=r"`method`.*\['ibp'\]"):
        report.certified_accuracy(0.1, "crown")
