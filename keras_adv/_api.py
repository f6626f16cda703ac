"""Registration of public classes for `.keras` loading; deprecations."""

import importlib
import warnings
from collections.abc import Callable
from collections.abc import Mapping
from typing import TypeVar

import keras

PACKAGE = "keras_adv"

T = TypeVar("T", bound=type)


def register(cls: T) -> T:
    """Registers `cls` as serializable under the `keras_adv>` prefix."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def deprecated_names(
    module: str, moved: Mapping[str, tuple[str, str]]
) -> Callable[[str], object]:
    """A module `__getattr__` for names that left the public API.

    Use as `__getattr__ = deprecated_names(__name__, {...})` in a package's
    `__init__.py`: the old names keep working, with a `DeprecationWarning`.

    Args:
        module: The module's `__name__`.
        moved: Dict `old name -> (home module, name there)`.

    Returns:
        A function `name -> object`, raising `AttributeError` for names
        not in `moved`.
    """

    def getattr_(name: str) -> object:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home, attribute = moved[name]
        warnings.warn(
            f"`{module}.{name}` is no longer public and will be removed; "
            "it was an internal helper (see CHANGELOG.md).",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(home), attribute)

    return getattr_
