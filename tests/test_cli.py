"""Tests for the `keras-adv` command line."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_adv
from keras_adv import cli


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A softmax regression trained briefly on the subset, saved."""
    (x, y), _ = keras_adv.datasets.load_mnist_subset()
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
    path = tmp_path_factory.mktemp("model") / "linear.keras"
    model.save(path)
    return str(path)


def _usage_error(capsys, argv):
    """Runs `main(argv)`, expects exit code 2; returns the stderr line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


# ------------------------------------------------------------ arguments
def test_parse_eps_and_attacks():
    assert cli.parse_eps("0.3, 0.1,0.1") == [0.0, 0.1, 0.3]
    assert cli.parse_eps("0") == [0.0]
    assert cli.parse_attacks("PGD,fgsm,pgd") == ["pgd", "fgsm"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["evaluate", "m.keras", "--attack", "fgsm,cw"], "unknown attack 'cw'"),
        (["evaluate", "m.keras", "--attack", "fgsm,"], "--attack"),
        (["evaluate", "m.keras", "--eps", "0.1,abc"], "--eps"),
        (["evaluate", "m.keras", "--eps", "0.1;0.2"], "--eps"),
        (["evaluate", "m.keras", "--eps", "-0.1"], ">= 0"),
        (["evaluate", "m.keras", "--eps", "nan"], "--eps"),
        (["evaluate", "m.keras", "--eps", ""], "--eps"),
        (["evaluate", "m.keras", "--steps", "0"], "--steps"),
        (["evaluate", "m.keras", "--norm", "l1"], "--norm"),
        (["evaluate", "does/not/exist.keras"], "no such file"),
        (["evaluate"], "required: model"),
        (["demo", "--epochs", "0"], "--epochs"),
        (["demo", "--epochs", "two"], "--epochs"),
        (["attack"], "invalid choice"),
        (["train"], "required: MODEL"),
        (["train", "m.h5"], "ending in .keras"),
        (["train", "/no/such/dir/m.keras"], "no such directory"),
        (["train", "m.keras", "--method", "vat"], "--method"),
        (["train", "m.keras", "--eps", "-1"], "--eps"),
        (["train", "m.keras", "--data", "npz:"], "--data"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(capsys, argv, expected):
    line = _usage_error(capsys, argv)
    assert line.startswith("keras-adv")
    assert "error:" in line
    assert expected in line


def test_bad_data_and_out_paths(capsys, saved_model, tmp_path):
    base = ["evaluate", saved_model, "--out", str(tmp_path / "out")]
    line = _usage_error(capsys, base + ["--data", "cifar"])
    assert "--data: expected mnist-subset, tfds:NAME or npz:PATH" in line
    line = _usage_error(capsys, base + ["--data", "npz:/no/such/file.npz"])
    assert "no such npz file" in line
    line = _usage_error(capsys, base + ["--data", "tfds:imagenet"])
    assert "imagenet" in line
    a_file = tmp_path / "file"
    a_file.write_text("x")
    line = _usage_error(capsys, ["evaluate", saved_model, "--out", str(a_file)])
    assert "not a directory" in line
    not_a_model = tmp_path / "bad.keras"
    not_a_model.write_text("not a zip")
    line = _usage_error(
        capsys, ["evaluate", str(not_a_model), "--out", str(tmp_path)]
    )
    assert "cannot load" in line


@pytest.mark.parametrize(
    "argv", [["--help"], ["evaluate", "-h"], ["demo", "-h"], ["train", "-h"]]
)
def test_help(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: keras-adv")
    if argv[0] == "evaluate":
        for option in ("--data", "--attack", "--eps", "--out", "--steps"):
            assert option in out
    if argv[0] == "demo":
        assert "--epochs" in out and "--seed" in out


def test_runtime_error_is_one_line_with_exit_code_1(
    capsys, saved_model, tmp_path
):
    # Images of the wrong size for the model: a clear error, no traceback.
    path = tmp_path / "small.npz"
    np.savez(path, x=np.zeros((4, 8, 8, 1), "uint8"), y=[0, 1, 2, 3])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main(
            ["evaluate", saved_model, "--data", f"npz:{path}", "-q"]
            + ["--out", str(tmp_path / "out"), "--no-checks"]
        )
    assert info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("keras-adv: error:")


# ---------------------------------------------------------- end to end
def test_evaluate_in_a_subprocess(saved_model, tmp_path):
    (_, _), (x, y) = keras_adv.datasets.load_mnist_subset(normalize=False)
    data = tmp_path / "digits.npz"
    np.savez(data, x=x[:150], y=y[:150])
    out = tmp_path / "report"
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    result = subprocess.run(
        [sys.executable, "-m", "keras_adv.cli", "evaluate", saved_model]
        + ["--data", f"npz:{data}", "--attack", "fgsm,pgd", "--eps"]
        + ["0.1,0.3", "--steps", "5", "--batch-size", "64", "-q"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["num_samples"] == 150
    assert report["epsilons"] == [0.0, 0.1, 0.3]
    assert list(report["attacks"]) == ["fgsm", "pgd"]
    assert report["attacks"]["pgd"]["steps"] == 5
    assert report["warnings"] == []
    rebuilt = keras_adv.evaluation.RobustnessReport.from_dict(report)
    assert rebuilt.table() in result.stdout
    assert "Gradient-masking checks: passed" in result.stdout
    assert (out / "robustness.png").read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {out / 'report.json'}" in result.stdout


def test_train_with_tiny_settings(capsys, tmp_path):
    path = tmp_path / "trades.keras"
    code = cli.main(
        ["train", str(path), "--method", "trades", "--steps", "2"]
        + ["--epochs", "1", "--max-samples", "64", "-q"]
    )
    assert code == 0
    assert f"wrote {path}" in capsys.readouterr().out
    model = keras.saving.load_model(path)
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)


def test_demo_with_tiny_settings(capsys, tmp_path):
    out = tmp_path / "demo"
    code = cli.main(
        ["demo", "--epochs", "1", "--train-samples", "128"]
        + ["--max-samples", "64", "--monitor-samples", "32"]
        + ["--out", str(out), "-q"]
    )
    assert code == 0
    stdout = capsys.readouterr().out
    log_dir = out / "logs"
    assert f"tensorboard --logdir {log_dir}" in stdout
    assert "Robustness report: 64 samples" in stdout
    report = json.loads((out / "report.json").read_text())
    assert report["epsilons"] == [0.0, 0.1, 0.2, 0.3]
    assert report["attacks"]["pgd"]["steps"] == 20
    assert (out / "robustness.png").exists()
    assert keras.saving.load_model(out / "model.keras").count_params() > 0
    # Keras' TensorBoard callback and the monitor both wrote event files.
    runs = {
        os.path.relpath(root, log_dir)
        for root, _, files in os.walk(log_dir)
        if any(f.startswith("events.out.tfevents") for f in files)
    }
    assert {"train", "validation", "robustness"} <= runs
    # The monitor runs before TensorBoard, which logs its keys too.
    validation = _tensor_tags(log_dir / "validation")
    assert {"epoch_robust_accuracy", "epoch_pgd_accuracy"} <= validation
    robustness = _tensor_tags(log_dir / "robustness")
    assert "adversarial_examples" in robustness


def _tensor_tags(run_dir):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    acc.Reload()
    return set(acc.Tags()["tensors"])


@pytest.mark.slow
def test_default_demo_trains_a_robust_model(capsys, tmp_path):
    # About 3 minutes on 2 CPU cores. Measured: clean 96.6%, worst case
    # 80.8% at eps 0.3 (FGSM + PGD-20, 1,000 test images).
    assert cli.main(["demo", "--out", str(tmp_path), "-q"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["clean_accuracy"] >= 0.94
    assert report["robust_accuracy"][-1] >= 0.7
    assert report["warnings"] == []
    assert "tensorboard --logdir" in capsys.readouterr().out
