"""Serialisation round-trip assertions."""

import os
import tempfile

import keras


def assert_config_round_trip(obj):
    """Asserts `serialize -> deserialize` rebuilds an equal config.

    Goes through `keras.saving.serialize_keras_object`, so the class must be
    registered (done when `keras_adv` is imported). Returns the new object.
    """
    serialized = keras.saving.serialize_keras_object(obj)
    restored = keras.saving.deserialize_keras_object(serialized)
    if type(restored) is not type(obj):
        raise AssertionError(f"{type(restored)} is not {type(obj)}")
    if restored.get_config() != obj.get_config():
        raise AssertionError(
            f"config changed:\n{obj.get_config()}\n{restored.get_config()}"
        )
    return restored


def assert_keras_round_trip(model, safe_mode=True):
    """Saves `model` to a `.keras` file and loads it with `safe_mode`.

    Returns the loaded model.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        return keras.saving.load_model(path, safe_mode=safe_mode)
