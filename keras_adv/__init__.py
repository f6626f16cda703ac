"""keras_adv: adversarial robustness plug-ins for Keras 3 (TensorFlow).

Importing `keras_adv` registers every public class for `.keras` loading, so
`keras.saving.load_model(path, safe_mode=True)` works after `import keras_adv`.

Imported before Keras and TensorFlow (as `keras-adv` does, so that it checks
its arguments without TensorFlow's start-up), keras_adv defers its
subpackages to their first use (`keras_adv.attacks`, `from keras_adv import
models`): import `keras` first, or use the subpackage, before loading a
model that holds keras_adv classes.
"""

import os as _os
import sys as _sys

from keras_adv.version import __version__

# A subpackage listed here is imported by `import keras_adv` (or on first
# use, see above).
__all__ = [
    "__version__",
    "attacks",
    "callbacks",
    "datasets",
    "evaluation",
    "layers",
    "losses",
    "metrics",
    "models",
    "recipes",
    "threat_models",
    "training",
]


def __getattr__(name):
    if name in __all__:
        import importlib

        from keras_adv._backend import ensure_tensorflow_backend

        ensure_tensorflow_backend()
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


if (
    "keras" in _sys.modules
    or "tensorflow" in _sys.modules
    or _os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow"
):
    for _name in __all__[1:]:
        __getattr__(_name)
    del _name
