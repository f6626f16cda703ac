"""Registration of public classes for `.keras` loading."""

import keras

PACKAGE = "keras_adv"


def register(cls):
    """Registers `cls` as serializable under the `keras_adv>` prefix."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
