"""Runs a test script on two logical CPU devices, in a subprocess.

Logical devices must be configured before TensorFlow initialises, so the
distribution tests run their script in a fresh interpreter: `run(script)`
prepends `PRELUDE` (two logical CPUs; the repository root and
`tests/models` on `sys.path`), runs it from the repository root and
returns the JSON the script printed after `RESULT` on its last such line.
Imported as `import _two_cpus` (`tests/conftest.py` puts this directory on
`sys.path`).
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = r"""
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
sys.path.insert(0, "tests/models")
"""


def run(script, timeout=300):
    """Runs `PRELUDE + script`; returns its `RESULT` JSON (a dict)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [s for s in proc.stdout.splitlines() if s.startswith("RESULT")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(proc.stderr[-3000:])
    return json.loads(lines[-1][len("RESULT") :])
