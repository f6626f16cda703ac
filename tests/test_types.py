"""The annotated modules type-check: mypy, configured in pyproject.toml.

`[tool.mypy]` lists the checked files and, under `disallow_untyped_defs`,
the modules whose every function is annotated. TensorFlow and Keras are
not analysed (they ship no type information), so a run takes seconds.
The cache goes to a temporary directory: the work tree is not written.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_errors(monkeypatch, tmp_path):
    mypy_api = pytest.importorskip("mypy.api")
    monkeypatch.chdir(ROOT)  # the configured files are relative to ROOT
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
        ]
    )
    assert status == 0, stdout + stderr
    assert stdout.startswith("Success: no issues found"), stdout
