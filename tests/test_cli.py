"""Tests for the `keras-adv` command line."""

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np
import pytest

import keras_adv
from keras_adv import cli
from keras_adv.cli import _errors
from keras_adv.cli import _evaluate
from keras_adv.cli import _shell
from keras_adv.cli import _startup
from keras_adv.cli import _values

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


@pytest.fixture(scope="module")
def faulty_models(tmp_path_factory):
    """Models that do not fit the MNIST data, and broken .keras files."""
    root = tmp_path_factory.mktemp("faulty")
    paths = {}
    wrong = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    paths["wrong_shape"] = root / "wrong_shape.keras"
    wrong.save(paths["wrong_shape"])
    inputs = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(inputs)
    two = keras.Model(
        inputs, [keras.layers.Dense(10)(flat), keras.layers.Dense(10)(flat)]
    )
    paths["two_outputs"] = root / "two_outputs.keras"
    two.save(paths["two_outputs"])
    paths["truncated"] = root / "truncated.keras"
    paths["truncated"].write_bytes(paths["two_outputs"].read_bytes()[:300])
    paths["no_config"] = root / "no_config.keras"
    with zipfile.ZipFile(paths["no_config"], "w") as archive:
        archive.writestr("metadata.json", "{}")
    return {name: str(path) for name, path in paths.items()}


def _exit(capsys, argv, code):
    """Runs `main(argv)`, expects `code`; returns the stderr lines."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == code
    return capsys.readouterr().err.strip().splitlines()


def _usage_error(capsys, argv):
    """Runs `main(argv)`, expects exit code 2; returns the stderr line."""
    lines = _exit(capsys, argv, 2)
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


def _one_line_error(capsys, argv):
    """Runs `main(argv)`, expects one line and exit code 1; returns it."""
    lines = _exit(capsys, argv, 1)
    assert len(lines) == 1, "\n".join(lines)
    assert lines[0].startswith("keras-adv: error: ")
    return lines[0]


def _run(args, env=None, timeout=60):
    """`python -m keras_adv.cli ARGS`: (returncode, stderr, seconds)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "keras_adv.cli"] + args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or dict(os.environ),
        cwd=ROOT,
    )
    return result.returncode, result.stderr, time.perf_counter() - start


# ------------------------------------------------------------ arguments
def test_parse_eps_and_attacks():
    assert _values.parse_eps("0.3, 0.1,0.1") == [0.0, 0.1, 0.3]
    assert _values.parse_eps("0") == [0.0]
    assert _values.parse_attacks("PGD,fgsm,pgd") == ["pgd", "fgsm"]
    assert set(_values.TRAIN_METHODS) == set(keras_adv.recipes.METHODS)
    assert _values.parse_attacks("pgd20") == ["pgd20"]  # as in the API
    assert _values.parse_method("FGSM-RS") == "fgsm_rs"  # an old spelling
    assert _values.parse_method("madry") == "pgd"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["evaluate", "m.keras", "--attack", "fgsm,cw"], "unknown attack 'cw'"),
        (["evaluate", "m.keras", "--attack", "pdg"], "did you mean 'pgd'"),
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
        (["train", "m.keras", "--method", "trade"], "did you mean 'trades'"),
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


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["evaluate", "m.keras", "--atack", "x"],
            "keras-adv evaluate: error: unrecognized arguments: --atack x; "
            "did you mean '--attack'? (see `keras-adv evaluate --help`)",
        ),
        (
            ["evaluate", "m.keras", "--max-smaples=3"],
            "did you mean '--max-samples'? (see `keras-adv evaluate --help`)",
        ),
        (
            ["demo", "--epochz", "3"],
            "unrecognized arguments: --epochz 3; did you mean '--epochs'? "
            "(see `keras-adv demo --help`)",
        ),
        (
            ["evaluate", "m.keras", "extra"],
            "unrecognized arguments: extra (see `keras-adv evaluate --help`)",
        ),
        (
            ["evaluate", "m.keras", "--attack", "autoatack"],
            "unknown attack 'autoatack'; choose from fgsm, pgd, pgd20",
        ),
        (["evaluate", "m.keras", "--attack", "autoatack"], "'autoattack'?"),
        (["train", "m.keras", "--method", "fgsmrs"], "'fgsm_rs'?"),
        (
            ["evalute", "m.keras"],
            "keras-adv: error: argument COMMAND: invalid choice: 'evalute' "
            "(choose from 'evaluate', 'train', 'demo'); did you mean "
            "'evaluate'? (see `keras-adv --help`)",
        ),
        (["--debug", "trian"], "did you mean 'train'?"),
        (
            ["--verison"],
            "keras-adv: error: unrecognized arguments: --verison; did you "
            "mean '--version'? (see `keras-adv --help`)",
        ),
    ],
)
def test_misspelt_names_and_options_get_a_suggestion(capsys, argv, expected):
    assert expected in _usage_error(capsys, argv)


def test_abbreviated_options_still_work(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--vers"])  # argparse accepts unique prefixes
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("keras-adv ")


def test_bad_data_and_out_paths(capsys, saved_model, tmp_path):
    base = ["evaluate", saved_model, "--out", str(tmp_path / "out")]
    line = _usage_error(capsys, base + ["--data", "cifar"])
    assert "--data: expected mnist-subset, tfds:NAME or npz:PATH" in line
    line = _usage_error(capsys, base + ["--data", "npz:/no/such/file.npz"])
    assert "no such npz file" in line
    line = _usage_error(capsys, base + ["--data", "tfds:imagenet"])
    assert "unknown tfds dataset 'imagenet'" in line
    a_file = tmp_path / "file"
    a_file.write_text("x")
    line = _usage_error(capsys, base + ["--data", f"npz:{a_file}"])
    assert "not an .npz file" in line
    line = _usage_error(capsys, ["evaluate", saved_model, "--out", str(a_file)])
    assert "not a directory" in line
    not_a_model = tmp_path / "bad.keras"
    not_a_model.write_text("not a zip")
    line = _usage_error(
        capsys, ["evaluate", str(not_a_model), "--out", str(tmp_path)]
    )
    assert "bad.keras is not a valid .keras file" in line


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
    line = _one_line_error(
        capsys,
        ["evaluate", saved_model, "--data", f"npz:{path}", "-q"]
        + ["--out", str(tmp_path / "out"), "--no-checks"],
    )
    assert "expects inputs of shape (28, 28, 1)" in line
    assert "samples of shape (8, 8, 1)" in line


# ------------------------------------------------- faults (one line each)
def test_model_with_the_wrong_input_shape(capsys, faulty_models, tmp_path):
    line = _one_line_error(
        capsys,
        ["evaluate", faulty_models["wrong_shape"], "--max-samples", "8"]
        + ["--out", str(tmp_path), "-q"],
    )
    assert "in user code" not in line
    assert "expects inputs of shape (32, 32, 3)" in line
    assert "--data mnist-subset has samples of shape (28, 28, 1)" in line


def test_model_with_two_outputs(capsys, faulty_models, tmp_path):
    line = _one_line_error(
        capsys,
        ["evaluate", faulty_models["two_outputs"], "--max-samples", "8"]
        + ["--out", str(tmp_path), "-q"],
    )
    assert "has 2 outputs" in line and "one output" in line


@pytest.mark.parametrize("name", ["truncated", "no_config"])
def test_corrupt_keras_file(capsys, faulty_models, tmp_path, name):
    path = faulty_models[name]
    line = _usage_error(capsys, ["evaluate", path, "--out", str(tmp_path)])
    assert f"MODEL: {path} is not a valid .keras file" in line
    assert "not found" not in line.lower()


def test_train_with_a_negative_label(capsys, tmp_path):
    data = tmp_path / "labels.npz"
    y = np.arange(8) - 1  # -1, 0, ..., 6
    np.savez(data, x=np.zeros((8, 28, 28, 1), "uint8"), y=y)
    line = _one_line_error(
        capsys,
        ["train", str(tmp_path / "m.keras"), "--data", f"npz:{data}"]
        + ["--epochs", "1", "-q"],
    )
    assert "`--data`. Expected class labels >= 0" in line
    assert "labels from -1 to 6" in line
    assert not (tmp_path / "m.keras").exists()


def test_evaluate_labels_beyond_the_model_classes(
    capsys, saved_model, tmp_path
):
    data = tmp_path / "labels.npz"
    np.savez(data, x=np.zeros((4, 28, 28, 1), "uint8"), y=[0, 1, 2, 12])
    line = _one_line_error(
        capsys,
        ["evaluate", saved_model, "--data", f"npz:{data}", "-q"]
        + ["--out", str(tmp_path / "out")],
    )
    assert "Expected class labels in [0, 10) (the 10 outputs of MODEL" in line
    assert "labels from 0 to 12" in line


def test_unprepared_tfds_dataset_fails_fast(tmp_path, saved_model):
    # Offline, tfds would retry downloads for minutes: check the local
    # tfds directory first (no TensorFlow, no network).
    env = dict(os.environ, TFDS_DATA_DIR=str(tmp_path / "tfds"))
    code, err, seconds = _run(
        ["evaluate", saved_model, "--data", "tfds:mnist"]
        + ["--out", str(tmp_path / "out")],
        env=env,
    )
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("keras-adv evaluate: error: --data: ")
    assert f"'mnist' is not prepared in {tmp_path / 'tfds'}" in line
    assert "tfds build mnist" in line
    assert seconds < 2.0


def test_prepared_tfds_dataset_passes_the_check(tmp_path, monkeypatch):
    from keras_adv.cli import _checks

    info = tmp_path / "fashion_mnist" / "3.0.1" / "dataset_info.json"
    info.parent.mkdir(parents=True)
    info.write_text("{}")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    _checks.check_data_spec("tfds:fashion_mnist")
    with pytest.raises(_errors.UsageError, match="'mnist' is not prepared"):
        _checks.check_data_spec("tfds:MNIST")


# ------------------------------------ no TensorFlow before the arguments
def test_import_has_no_side_effects_and_no_tensorflow():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")
    }
    # As in the console-script process (argv[0] is the `keras-adv` script).
    code = (
        "import os, sys; sys.argv[0] = 'keras-adv'; import keras_adv.cli; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow'; "
        "assert 'keras' not in sys.modules, 'keras'; "
        "assert 'KERAS_BACKEND' not in os.environ; "
        "assert 'TF_CPP_MIN_LOG_LEVEL' not in os.environ"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_import_keras_adv_first_still_registers_every_class():
    # Outside the command, `import keras_adv` before keras must register
    # the classes for `.keras` loading (safe_mode=True after the import).
    code = (
        "import keras_adv, keras; "
        "assert keras.saving.get_registered_object('keras_adv>PGD'); "
        "assert keras.saving.get_registered_object("
        "'keras_adv>AdversarialModel')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_missing_model_is_reported_before_tensorflow_loads(tmp_path):
    code, err, seconds = _run(
        ["evaluate", str(tmp_path / "missing.keras")]
        + ["--out", str(tmp_path / "out")]
    )
    assert code == 2
    assert err.strip() == (
        f"keras-adv evaluate: error: MODEL: no such file: "
        f"{tmp_path / 'missing.keras'}"
    )
    assert seconds < 2.0


# ------------------------------------------ tracebacks: bugs and --debug
def test_other_errors_keep_their_traceback(
    capsys, monkeypatch, faulty_models, tmp_path
):
    # Skip the CLI's own shape check: the model fails inside the compiled
    # evaluation graph, in Keras code. Not a keras_adv argument error, so
    # the traceback stays; the last line is TensorFlow's meaningful line.
    monkeypatch.setattr(_evaluate, "check_model_fits", lambda *args: None)
    argv = ["evaluate", faulty_models["wrong_shape"], "--max-samples", "8"]
    argv += ["--out", str(tmp_path), "-q", "--no-checks"]
    lines = _exit(capsys, argv, 1)
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith("keras-adv: error: Input 0")
    assert "incompatible with the layer" in lines[-1]
    assert "in user code" not in lines[-1]


def test_debug_raises_with_the_full_traceback(capsys, faulty_models, tmp_path):
    argv = ["evaluate", faulty_models["two_outputs"], "--max-samples", "8"]
    argv += ["--out", str(tmp_path), "-q"]
    with pytest.raises(ValueError, match="has 2 outputs"):
        cli.main(argv + ["--debug"])
    with pytest.raises(ValueError, match="has 2 outputs"):
        cli.main(["--debug"] + argv)
    assert keras.config.is_traceback_filtering_enabled()
    # Usage errors stay one line.
    line = _usage_error(capsys, ["--debug", "evaluate", "m.keras", "--eps", ""])
    assert "--eps" in line


def test_errors_raised_inside_graphs_are_summarised():
    # keras_adv's own error raised in traced code: TensorFlow wraps it in
    # "in user code:" and a list of frames (this one is a real message);
    # the summary is the message, and the last frame is keras_adv's.
    package = os.path.dirname(keras_adv.__file__)
    site = "/venv/lib/python3.11/site-packages"
    message = (
        "in user code:\n\n"
        f'    File "{package}/evaluation/robustness.py", line 302, in _clean'
        "  *\n        outputs = self._outputs(x)\n"
        f'    File "{package}/evaluation/robustness.py", line 291, in '
        "_outputs  *\n        raise ValueError(\n\n"
        "    ValueError: evaluate_robustness needs a model with one output "
        "of shape (batch, classes). Received 2 outputs.\n"
    )
    error = ValueError(message)
    assert _errors.raised_by_keras_adv(error)
    assert _errors.summary(error) == (
        "evaluate_robustness needs a model with one output of shape "
        "(batch, classes). Received 2 outputs."
    )
    # The same wrapping around a Keras layer error: not keras_adv's.
    keras_error = ValueError(
        message.split("    ValueError")[0]
        + f'    File "{site}/keras/src/layers/input_spec.py", line 239, in '
        "assert_input_compatibility\n        raise ValueError(\n\n"
        "    ValueError: Exception encountered when calling "
        "Sequential.call().\n    \n    \x1b[1mInput 0 of layer 'dense' is "
        "incompatible with the layer\x1b[0m\n    \n    Arguments received "
        "by Sequential.call():\n      \u2022 training=False\n"
    )
    assert not _errors.raised_by_keras_adv(keras_error)
    assert _errors.summary(keras_error) == (
        "Input 0 of layer 'dense' is incompatible with the layer (in "
        "Sequential.call())"
    )


def test_summary_of_op_errors_and_keras_layer_errors():
    op_error = RuntimeError(
        "Graph execution error:\n\nDetected at node loss defined at (most "
        'recent call last):\n  File "/x/keras/nn.py", line 3, in f\n\n'
        "Received a label value of -1 which is outside the valid range of "
        "[0, 7).\n\t [[{{node loss}}]] [Op:__inference_step_1]"
    )
    assert _errors.summary(op_error) == (
        "Received a label value of -1 which is outside the valid range of "
        "[0, 7)."
    )
    layer_error = ValueError(
        "Exception encountered when calling Dense.call().\n\n"
        "\x1b[1mInput 0 is incompatible\x1b[0m\n\nArguments received"
    )
    assert _errors.summary(layer_error) == (
        "Input 0 is incompatible (in Dense.call())"
    )
    assert _errors.summary(KeyError()) == "KeyError"
    assert not _errors.raised_by_keras_adv(RuntimeError("x"))


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


def test_train_with_tiny_settings(capsys, tmp_path, monkeypatch):
    # Any model counts as "at chance" with a margin of 100 points: the
    # recipe's warning is one `keras-adv: warning:` line on stderr.
    monkeypatch.setattr(keras_adv.recipes._robust_fit, "_CHANCE_MARGIN", 1.0)
    path = tmp_path / "trades.keras"
    code = cli.main(
        ["train", str(path), "--method", "trades", "--steps", "2"]
        + ["--epochs", "1", "--max-samples", "64", "-q"]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert f"wrote {path}" in captured.out
    evaluate = _shell.command_line(
        "keras-adv", "evaluate", str(path), "--data", "mnist-subset"
    )
    assert f"Evaluate it with:\n    {evaluate}\n" in captured.out
    (warning,) = captured.err.strip().splitlines()
    assert warning.startswith(
        "keras-adv: warning: The trained model classifies"
    )
    assert "of 64 training samples" in warning
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
    tensorboard = _shell.command_line("tensorboard", "--logdir", log_dir)
    assert f"TensorBoard:\n    {tensorboard}\n" in stdout
    assert "Robustness report: 64 samples" in stdout
    # Ends with the command of the figure to quote, and says what the
    # worst case is.
    autoattack = _shell.command_line(
        "keras-adv",
        "evaluate",
        out / "model.keras",
        "--attack",
        "autoattack",
        "--eps",
        "0.3",
        "--max-samples",
        "64",
        "--out",
        out / "autoattack",
    )
    assert "the figure to quote is AutoAttack's" in stdout
    assert f"Measure it with:\n    {autoattack}\n" in stdout
    assert "under FGSM and PGD-20 (worst case: a test image counts as " in (
        " ".join(stdout.split())
    )
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
    # The README's recipe: about 4 minutes on 2 CPU cores. Measured: clean
    # 98.5%, worst case 86.6% at eps 0.3 (FGSM + PGD-20, 1,000 images).
    assert cli.main(["demo", "--out", str(tmp_path), "-q"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["clean_accuracy"] >= 0.95
    assert report["robust_accuracy"][-1] >= 0.8
    assert report["warnings"] == []
    assert "--logdir" in capsys.readouterr().out


def test_evaluate_with_autoattack(saved_model, capsys, tmp_path):
    (_, _), (x, y) = keras_adv.datasets.load_mnist_subset(normalize=False)
    data = tmp_path / "digits.npz"
    np.savez(data, x=x[:24], y=y[:24])
    out = tmp_path / "report"
    capsys.readouterr()
    code = cli.main(
        ["evaluate", saved_model, "--data", f"npz:{data}"]
        + ["--attack", "autoattack", "--eps", "0.05"]
        + ["--out", str(out)]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["attacks"]) == ["autoattack"]
    assert report["attacks"]["autoattack"]["class_name"] == "AutoAttack"
    assert report["attacks"]["autoattack"]["steps"] is None
    # Off a terminal: one line per attack as it goes, then a plain table.
    stdout = capsys.readouterr().out
    clean = 100 * report["clean_accuracy"]
    assert (
        "autoattack: AutoAttack standard (linf, eps=0.05) on the "
        f"{round(clean * 24 / 100)} of 24 samples classified correctly"
    ) in stdout
    assert "robust accuracy after APGD-CE: " in stdout
    robust = 100 * report["attacks"]["autoattack"]["accuracy"][-1]
    assert f"autoattack: robust accuracy {robust:.2f}% at eps 0.05" in stdout
    assert "worst case: a sample counts as robust only if" in stdout
    assert "**" not in stdout and "\u2501" not in stdout


# ------------------------------------------- printed commands run as printed
def _environment(monkeypatch, tmp_path, venv=".venv", scripts=(), on_path=()):
    """A fake Python environment `tmp_path/project/<venv>` with `scripts`
    (and `dev.py` next to it); `on_path` are found by `shutil.which`."""
    project = tmp_path / "project"
    bin_dir = project / venv / "bin"
    bin_dir.mkdir(parents=True)
    (project / "dev.py").write_text("")
    for name in scripts:
        (bin_dir / name).write_text("")
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setattr(sys, "prefix", str(project / venv))
    found = {name: str(bin_dir / name) for name in on_path}
    monkeypatch.setattr(shutil, "which", found.get)
    monkeypatch.setattr(os, "name", "posix")
    monkeypatch.chdir(project)
    return project


def test_command_line_on_path(monkeypatch, tmp_path):
    # An activated environment (or a pip install on PATH): the bare name.
    _environment(
        monkeypatch, tmp_path, scripts=["keras-adv"], on_path=["keras-adv"]
    )
    line = _shell.command_line("keras-adv", "evaluate", "a b/m.keras")
    assert line == "keras-adv evaluate 'a b/m.keras'"


def test_command_line_in_the_project_venv(monkeypatch, tmp_path):
    # After `python3 dev.py demo`: .venv is not on PATH; dev.py runs it.
    project = _environment(monkeypatch, tmp_path, scripts=["tensorboard"])
    line = _shell.command_line("tensorboard", "--logdir", "demo/logs")
    assert line == "python3 dev.py tensorboard --logdir demo/logs"
    monkeypatch.chdir(project.parent)
    line = _shell.command_line("keras-adv", "--version")
    assert line == "python3 project/dev.py keras-adv --version"


def test_command_line_in_another_environment(monkeypatch, tmp_path):
    # Another virtual environment, not activated: the script's path; an
    # environment without the script: python -m.
    project = _environment(
        monkeypatch, tmp_path, venv="env", scripts=["keras-adv"]
    )
    assert _shell.command_line("keras-adv", "-h") == "env/bin/keras-adv -h"
    python = str(project / "env" / "bin" / "python")
    assert _shell.command_line("tensorboard", "--logdir", "x") == (
        f"{python} -m tensorboard.main --logdir x"
    )


def _dev_module():
    spec = importlib.util.spec_from_file_location(
        "keras_adv_dev", os.path.join(ROOT, "dev.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dev_py_runs_keras_adv_and_tensorboard_from_its_venv(monkeypatch):
    dev = _dev_module()
    calls = []
    monkeypatch.setattr(dev, "setup", lambda *args, **kwargs: None)
    monkeypatch.setattr(dev, "_run", lambda cmd, **kw: calls.append((cmd, kw)))
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    py = dev._venv_python()
    dev.main(["keras-adv", "evaluate", "m.keras", "--attack", "autoattack"])
    dev.main(["tensorboard", "--logdir", "demo/logs"])
    dev.main(["demo", "--epochs", "2"])
    (keras_adv_cmd, kw1), (tensorboard_cmd, kw2), (demo_cmd, kw3) = calls
    assert keras_adv_cmd == [py, "-m", "keras_adv.cli", "evaluate"] + [
        "m.keras",
        "--attack",
        "autoattack",
    ]
    assert tensorboard_cmd == [py, "-m", "tensorboard.main"] + [
        "--logdir",
        "demo/logs",
    ]
    assert demo_cmd == [py, "-m", "keras_adv.cli", "demo", "--epochs", "2"]
    # keras-adv sets TensorFlow's log level itself (3, unless the user
    # set one); tensorboard gets 3 from dev.py.
    assert "TF_CPP_MIN_LOG_LEVEL" not in kw1["env"]
    assert "TF_CPP_MIN_LOG_LEVEL" not in kw3["env"]
    assert kw2["env"]["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert importlib.util.find_spec("tensorboard.main") is not None


def test_startup_notices_are_held_back(capfd):
    notices = (
        "WARNING: All log messages before absl::InitializeLog() is called "
        "are written to STDERR\n"
        "I0000 00:00:1796603087.288756   11031 port.cc:153] oneDNN custom "
        "operations are on. You may see slightly different numerical "
        "results.\n"
        "I0000 00:00:1796603087.289061   11031 cudart_stub.cc:31] Could not "
        "find cuda drivers on your machine, GPU will not be used.\n"
    )
    capfd.readouterr()
    with _startup.held_back():
        os.write(2, (notices + "a real problem\n").encode())
        print("from Python", file=sys.__stderr__)  # buffered
        assert capfd.readouterr().err == ""  # held back so far
    assert capfd.readouterr().err == "a real problem\nfrom Python\n"
    with pytest.raises(KeyError):
        with _startup.held_back():
            os.write(2, b"kept after an error\n")
            raise KeyError("x")
    assert capfd.readouterr().err == "kept after an error\n"
    with _startup.held_back(enabled=False):
        os.write(2, notices.encode())
    assert capfd.readouterr().err == notices


def test_demo_commands_run_as_printed_without_tensorflow_noise(
    saved_model, tmp_path
):
    # The line the demo prints for the AutoAttack figure, run as printed
    # (the last --attack/--max-samples win: FGSM on 8 images), in a fresh
    # environment: nothing on stderr, not even TensorFlow's start-up lines.
    line = _shell.command_line(
        "keras-adv",
        "evaluate",
        saved_model,
        "--attack",
        "autoattack",
        "--eps",
        "0.3",
        "--out",
        tmp_path / "autoattack",
    )
    words = shlex.split(line) + ["--attack", "fgsm", "--max-samples", "8"]
    if shutil.which(words[0]) is None:
        pytest.skip(f"{words[0]} is not on PATH")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        words + ["-q", "--no-checks"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
    assert "Robustness report: 8 samples" in result.stdout
    assert (tmp_path / "autoattack" / "report.json").exists()
