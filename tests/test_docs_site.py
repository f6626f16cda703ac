"""The documentation site builds with `mkdocs build --strict`.

The API reference pages (docs/api/) are rendered by mkdocstrings from the
docstrings, so a broken link, a page missing from the nav, a name in
`__all__` that does not exist or an `Args:` entry that is not a parameter
fails this test. griffe reads the sources statically: no TensorFlow import.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for page in ("index.html", "api/attacks/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
