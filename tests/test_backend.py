import os
import subprocess
import sys

import keras_adv


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


def test_version_and_public_surface():
    assert keras_adv.__version__ == "0.1.0"
    for name in keras_adv.__all__:
        assert hasattr(keras_adv, name)
    for sub in ("attacks", "threat_models", "losses", "callbacks", "models"):
        module = getattr(keras_adv, sub)
        for name in module.__all__:
            assert hasattr(module, name), f"{sub}.{name}"
