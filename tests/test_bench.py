"""The benchmark scripts still run (tiny settings; no timing asserts)."""

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


@pytest.mark.slow
def test_training_bench_runs(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["training.py", "--help"])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(BENCH / "training.py"), run_name="__main__")
    assert info.value.code == 0
