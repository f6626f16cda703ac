"""Tests for `keras-adv evaluate --certify`: certified rows on the command
line (in-process, through `keras_adv.cli.main`)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_adv
from keras_adv import cli
from keras_adv.certification import SmoothedClassifier
from keras_adv.certification import verified_accuracy
from keras_adv.cli import _values

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A softmax regression trained briefly, saved, and 24 test digits."""
    (x, y), (x_test, y_test) = keras_adv.datasets.load_mnist_subset()
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
    )
    model.fit(x, y, epochs=1, batch_size=128, verbose=0)
    root = tmp_path_factory.mktemp("certify")
    path = root / "linear.keras"
    model.save(path)
    data = root / "digits.npz"
    np.savez(data, x=x_test[:24], y=y_test[:24])
    return str(path), f"npz:{data}", x_test[:24], y_test[:24]


def _evaluate(capsys, saved, tmp_path, *options):
    path, data, _, _ = saved
    out = tmp_path / "report"
    capsys.readouterr()
    code = cli.main(
        ["evaluate", path, "--data", data, "--no-checks", "-q"]
        + ["--out", str(out), *options]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    return report, capsys.readouterr().out


def test_certify_bounds_prints_and_writes_the_certified_rows(
    capsys, saved, tmp_path
):
    report, stdout = _evaluate(
        capsys,
        saved,
        tmp_path,
        *["--attack", "fgsm,pgd", "--steps", "3", "--eps", "0.002,0.01"],
        *["--certify", "IBP,crown_ibp"],
    )
    assert list(report["certified"]) == ["ibp", "crown_ibp"]
    model = keras.saving.load_model(saved[0])
    x, y = saved[2], saved[3]
    for method, entry in report["certified"].items():
        assert entry["accuracy"] == [
            verified_accuracy(model, x, y, eps, method=method)
            for eps in report["epsilons"]
        ]
        assert entry["accuracy"][0] == report["clean_accuracy"]
        for i, certified in enumerate(entry["accuracy"]):
            assert certified <= report["robust_accuracy"][i]
    assert report["certified"]["crown_ibp"]["accuracy"][1] > 0.0
    rebuilt = keras_adv.evaluation.RobustnessReport.from_dict(report)
    assert rebuilt.table() in stdout
    assert "certified crown_ibp (linf)" in stdout
    assert rebuilt.bracket(0.01) in stdout
    assert "; certified: ibp, crown_ibp" in stdout.splitlines()[0]


def test_certify_smoothing_builds_a_smoothed_classifier(
    capsys, saved, tmp_path
):
    options = {"n0": 10, "n": 200, "alpha": 0.01}
    report, stdout = _evaluate(
        capsys,
        saved,
        tmp_path,
        *["--attack", "pgd", "--steps", "2", "--norm", "l2"],
        *["--eps", "0.25,1", "--certify", "smoothing", "--sigma", "0.25"],
        *["--n0", "10", "--n", "200", "--alpha", "0.01", "--seed", "5"],
    )
    entry = report["certified"]["smoothing"]
    assert entry["settings"]["sigma"] == 0.25
    assert {k: entry["settings"][k] for k in options} == options
    # The library's certify with the evaluation's seed for the first
    # certificate after one attack on batch 0: [seed + 1, 0].
    model = keras.saving.load_model(saved[0])
    smoothed = SmoothedClassifier(model, sigma=0.25, seed=5)
    x, y = saved[2], saved[3]
    predictions, radii = smoothed.certify(
        x, seed=np.array([6, 0], "int32"), **options
    )
    assert entry["accuracy"] == [
        float(np.mean((predictions == y) & (radii >= eps)))
        for eps in report["epsilons"]
    ]
    assert "certified smoothing sigma=0.25 (l2)" in stdout
    assert "; certified: smoothing (sigma 0.25)" in stdout


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--certify", "crown_ib"], "did you mean 'crown_ibp'?"),
        (["--certify", "smothing"], "did you mean 'smoothing'?"),
        (["--certify", "ibp,"], "--certify"),
        (["--certify", "smoothing"], "--certify smoothing needs --sigma"),
        (
            ["--certify", "smoothing", "--sigma", "0.25"],
            "certifies L2 balls: pass --norm l2",
        ),
        (["--sigma", "0.25"], "--sigma: options of --certify smoothing"),
        (["--certify", "ibp", "--n", "10"], "--n: options of --certify"),
        (["--certify", "smoothing", "--sigma", "0"], "--sigma"),
        (["--certify", "smoothing", "--alpha", "0.7"], "--alpha"),
    ],
)
def test_certify_usage_errors(capsys, saved, tmp_path, options, expected):
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main(
            ["evaluate", saved[0], "--out", str(tmp_path / "out"), *options]
        )
    assert info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("keras-adv evaluate: error: ")
    assert expected in line


def test_parse_certify():
    assert _values.parse_certify(" CROWN-IBP,ibp, crown_ibp") == [
        "crown_ibp",
        "ibp",
    ]
    assert _values.CERTIFY_METHODS == keras_adv._names.CERTIFY_METHODS


def test_certify_names_are_checked_before_tensorflow_loads(tmp_path):
    # As in the console-script process (argv[0] is the `keras-adv` script).
    code = (
        "import sys\n"
        "sys.argv[0] = 'keras-adv'\n"
        "from keras_adv import cli\n"
        "try:\n"
        f"    cli.main(['evaluate', {str(tmp_path / 'm.keras')!r}, "
        "'--certify', 'crown-ibq'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 2, exit.code\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "did you mean 'crown_ibp'?" in result.stderr
