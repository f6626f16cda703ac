"""Test configuration: TensorFlow backend, quiet logs, deterministic seeds."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under pytest-xdist (`dev.py test` runs one worker per core), each
    # worker runs each TensorFlow op on one thread: the workers share the
    # cores instead of oversubscribing them.
    import tensorflow as tf  # noqa: E402

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(2)


@pytest.fixture(autouse=True)
def _reset_dtype_policy():
    """Every test starts (and leaves) with the float32 policy."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")
