"""Registration of public classes for `.keras` loading; deprecations."""

import importlib
import warnings

import keras

PACKAGE = "keras_adv"


def register(cls):
    """Registers `cls` as serializable under the `keras_adv>` prefix."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def deprecated_attribute(module, name, moved):
    """A module `__getattr__` body for names that left the public API.

    Args:
        module: The module's `__name__`.
        name: The attribute asked for.
        moved: Dict `old name -> (home module, name there)`.

    Returns:
        The object from its home, after a `DeprecationWarning`.

    Raises:
        AttributeError: for a name that is not in `moved`.
    """
    if name not in moved:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    home, attribute = moved[name]
    warnings.warn(
        f"`{module}.{name}` is no longer public and will be removed; it "
        "was an internal helper (see CHANGELOG.md).",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(importlib.import_module(home), attribute)
