"""The benchmark scripts still run (tiny settings; no timing asserts)."""

import json
import math
import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_attack_bench_runs(monkeypatch, capsys):
    monkeypatch.setattr(
        sys, "argv", ["attacks.py", "--repeats", "1", "--batch", "8"]
    )
    runpy.run_path(str(BENCH / "attacks.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "| PGD-20 (Linf) |" in out and "| FGSM (Linf) |" in out
    for line in out.splitlines():
        if line.startswith("| PGD") or line.startswith("| FGSM"):
            assert line.rstrip().endswith("| 1 |")  # one trace each


def _finite_positive(*values):
    return all(math.isfinite(v) and v > 0 for v in values)


def test_bounds_bench_runs(capsys):
    script = runpy.run_path(str(BENCH / "bounds.py"))
    rows, traces = script["main"](["--repeats", "1", "--batch", "4"])
    ibp = [
        "forward pass",
        "IBP logits (graph)",
        "IBP logits (interval_bounds)",
        "IBP margins (margin_bounds)",
    ]
    crown = ["CROWN-IBP margins (graph)", "CROWN-IBP margins (margin_bounds)"]
    found = {}
    for row in rows:
        found.setdefault(row["model"], []).append(row["computation"])
        assert _finite_positive(row["ms"], row["ratio"])
        if row["computation"] == "forward pass":
            assert row["ratio"] == 1.0
    # small_cnn max-pools: IBP only; Gowal's small model also has CROWN-IBP.
    assert found == {"small_cnn": ibp, "Gowal small": ibp + crown}
    # Every bound graph traced once (warm-up and timed runs included).
    assert traces == {"small_cnn": [1, 1], "Gowal small": [1, 1, 1]}
    out = capsys.readouterr().out
    assert "| Gowal small | CROWN-IBP margins (graph) |" in out


def test_autoattack_paths_bench_runs(capsys):
    script = runpy.run_path(str(BENCH / "autoattack_paths.py"))
    rows = script["main"](
        ["--samples", "8", "--epochs", "1", "--train-samples", "256"]
    )
    assert [row["door"] for row in rows] == [
        "AutoAttack.evaluate",
        "evaluate_robustness, checks (CLI default)",
        "evaluate_robustness, no checks",
    ]
    assert rows[0]["ratio"] == 1.0
    for row in rows:
        assert _finite_positive(row["seconds_per_sample"], row["ratio"])
        assert 0.0 <= row["robust_accuracy"] <= 1.0
        # The same AutoAttack (seed 0) through each door: same survivors.
        assert row["same_robust_samples"]
        assert row["robust_accuracy"] == rows[0]["robust_accuracy"]
    assert "| AutoAttack.evaluate |" in capsys.readouterr().out


def test_generated_data_bench_runs(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))  # its `_timing` import
    script = runpy.run_path(str(BENCH / "generated_data.py"))
    row = script["main"](
        ["--epochs", "2", "--num-generated", "200", "--repeats", "1"]
        + ["--train-samples", "200"]
    )
    # Batch 16, real fraction 0.3: round(4.8) = 5 real per batch, and an
    # epoch is one pass over the 200 real images.
    assert row["real_per_batch"] == 5 and row["steps_per_epoch"] == 40
    assert set(row["pipeline_seconds"]) == {"library", "hand"}
    assert set(row["epoch_seconds"]) == {
        "fit_mix_datasets",
        "fit_hand_written_data",
        "hand_written_loop",
    }
    assert _finite_positive(
        *row["pipeline_seconds"].values(),
        *row["epoch_seconds"].values(),
        row["pipeline_ratio"],
        row["epoch_ratio_data"],
        row["epoch_ratio_loop"],
    )
    assert json.loads(capsys.readouterr().out) == row


def test_smoothing_bench_runs(capsys):
    script = runpy.run_path(str(BENCH / "smoothing.py"))
    # A noise batch of 64 splits the 10 + 100 draws of each input.
    out = script["main"](
        ["--samples", "2", "--n0", "10", "--n", "100"]
        + ["--noise-batch", "64", "--repeats", "1"]
    )
    # Same noise (same stateless seeds): the hand-written loop certifies
    # the same classes with the same radii.
    assert out["same"]
    assert out["traces"] == {
        "SmoothedClassifier.certify": 1,
        "hand-written tf.function": 1,
    }
    names = [row["implementation"] for row in out["rows"]]
    assert names == ["SmoothedClassifier.certify", "hand-written tf.function"]
    for row in out["rows"]:
        assert _finite_positive(
            row["seconds"], row["samples_per_second"], row["ratio"]
        )
        assert row["samples_per_second"] == pytest.approx(2 / row["seconds"])
        assert row["evaluations_per_second"] == pytest.approx(
            110 * row["samples_per_second"]
        )
    assert out["rows"][1]["ratio"] == 1.0
    assert "same predictions and radii: yes" in capsys.readouterr().out


@pytest.mark.slow
def test_training_bench_runs(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["training.py", "--help"])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(BENCH / "training.py"), run_name="__main__")
    assert info.value.code == 0


def test_reference_comparison_weight_layout():
    """The Keras -> torch weight transfer of bench/reference_autoattack.py
    (the comparison itself needs torch and runs outside the test suite)."""
    import numpy as np

    from keras_adv.testing import mnist_cnn

    script = runpy.run_path(str(BENCH / "reference_autoattack.py"))
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 3, 3, 4))  # NHWC feature map
    kernel = rng.normal(size=(36, 5))
    permuted = script["nchw_dense_kernel"](kernel, 4)
    chw = features.transpose(0, 3, 1, 2).reshape(2, -1)
    np.testing.assert_allclose(chw @ permuted, features.reshape(2, -1) @ kernel)
    # Row h*W*C + w*C + c moves to row c*H*W + h*W + w: (h, w, c) = (1, 2, 3).
    np.testing.assert_array_equal(permuted[3 * 9 + 1 * 3 + 2], kernel[23])
    with pytest.raises(ValueError, match="square"):
        script["nchw_dense_kernel"](kernel[:30], 4)
    spec = script["_architecture"](mnist_cnn())
    assert [item["type"] for item in spec] == [
        "conv",
        "maxpool",
        "conv",
        "maxpool",
        "flatten",
        "dense",
        "dense",
    ]
    assert spec[0] == {
        "type": "conv",
        "filters": 32,
        "kernel": [3, 3],
        "padding": "same",
        "activation": "relu",
    }
    assert spec[-1] == {"type": "dense", "units": 10, "activation": "linear"}


@pytest.mark.slow
def test_gan_training_bench_runs(monkeypatch, capsys):
    for extra in ([], ["--paths"]):
        monkeypatch.setattr(
            sys,
            "argv",
            ["gan_training.py", "--repeats", "1", "--samples", "64"]
            + ["--configs", "untargeted", *extra],
        )
        runpy.run_path(str(BENCH / "gan_training.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "one-pass baseline" in out and "hook by hook" in out


@pytest.mark.parametrize("two_pass", [False, True])
def test_gan_training_baseline_makes_the_updates_of_fit(two_pass):
    """The hand-written step is AdvGAN's step: same weights after an epoch
    (untargeted, so no random targets; same initial weights)."""
    import numpy as np

    import keras_adv

    script = runpy.run_path(str(BENCH / "gan_training.py"))
    (x, y), _ = keras_adv.datasets.load_mnist_subset()
    x, y = x[:128], y[:128].astype("int32")
    advgan = script["compiled_advgan"]("untargeted")
    fused = script["make_fused_epoch"](
        "untargeted", x, y, advgan, two_pass=two_pass
    )
    history = advgan.fit(x, y, batch_size=64, shuffle=False, verbose=0)
    success = fused()
    assert success == pytest.approx(history.history["success_rate"][-1])
    nets = (advgan.generator, advgan.discriminator)
    for net, twin in zip(nets, fused.networks):
        for a, b in zip(net.get_weights(), twin.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_advgan_teacher_probe_runs(capsys):
    script = runpy.run_path(str(BENCH / "advgan_teacher.py"))
    rates = script["main"](
        ["--samples", "64", "--epochs", "1", "--apgd-steps", "2"]
    )
    assert len(rates) == 10 and all(0.0 <= r <= 1.0 for r in rates)
    out = capsys.readouterr().out
    assert "APGD target 9" in out and "imitation" in out
