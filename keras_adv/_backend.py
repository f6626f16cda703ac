"""Backend check: keras_adv runs on Keras 3 with the TensorFlow backend."""

import os


def ensure_tensorflow_backend():
    """Imports Keras with the TensorFlow backend or raises a clear error.

    If `KERAS_BACKEND` is unset, Keras' own default (TensorFlow) applies.

    Raises:
        ImportError: if Keras is older than 3 or another backend is active.
    """
    requested = os.environ.get("KERAS_BACKEND")
    if requested and requested != "tensorflow":
        raise ImportError(
            "keras_adv requires the TensorFlow backend of Keras 3. "
            f"Received: KERAS_BACKEND={requested!r}. Set "
            "KERAS_BACKEND=tensorflow before importing keras or keras_adv."
        )
    import keras

    major = int(keras.__version__.split(".")[0])
    if major < 3:
        raise ImportError(
            "keras_adv requires Keras 3. Received: keras=="
            f"{keras.__version__}. Install with `pip install 'keras>=3'`."
        )
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ImportError(
            "keras_adv requires the TensorFlow backend of Keras 3, but Keras "
            f"is configured with backend={backend!r} (from KERAS_BACKEND or "
            "~/.keras/keras.json). Set KERAS_BACKEND=tensorflow."
        )
    return keras
