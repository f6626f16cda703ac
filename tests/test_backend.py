import os
import subprocess
import sys
from pathlib import Path

import pytest

import keras_adv

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None


def test_other_backend_is_refused_with_a_clear_error():
    env = dict(os.environ, KERAS_BACKEND="jax")
    proc = subprocess.run(
        [sys.executable, "-c", "import keras_adv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert "requires the TensorFlow backend" in proc.stderr
    assert "KERAS_BACKEND='jax'" in proc.stderr


def test_version_is_single_sourced():
    # No literal: the version is a PEP 440 string, the one pyproject.toml
    # declares (a release bumps both or this fails).
    from packaging.version import Version

    version = keras_adv.__version__
    assert str(Version(version)) == version
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if tomllib is None or not pyproject.is_file():
        pytest.skip("needs tomllib and the source tree's pyproject.toml")
    declared = tomllib.loads(pyproject.read_text())["project"]["version"]
    assert version == declared


def test_public_surface():
    for name in keras_adv.__all__:
        assert hasattr(keras_adv, name)
    for sub in ("attacks", "threat_models", "losses", "callbacks", "models"):
        module = getattr(keras_adv, sub)
        for name in module.__all__:
            assert hasattr(module, name), f"{sub}.{name}"
