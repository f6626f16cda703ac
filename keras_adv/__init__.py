"""keras_adv: adversarial robustness plug-ins for Keras 3 (TensorFlow).

Importing `keras_adv` registers every public class for `.keras` loading, so
`keras.saving.load_model(path, safe_mode=True)` works after `import keras_adv`.

The one exception is the `keras-adv` command itself (the console script or
`python -m keras_adv.cli`): it checks its arguments, paths and data specs
before TensorFlow starts, so in that process (and only there) the
subpackages load on first use.
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
    "certification",
    "datasets",
    "distribute",
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


def _is_console_command():
    """True in a `keras-adv` / `python -m keras_adv.cli` process."""
    script = _os.path.basename(_sys.argv[0]) if _sys.argv else ""
    if script in ("keras-adv", "keras-adv.exe", "keras-adv-script.py"):
        return True
    argv = list(getattr(_sys, "orig_argv", []))
    return any(
        a == "-m" and b in ("keras_adv.cli", "keras_adv.cli.__main__")
        for a, b in zip(argv, argv[1:])
    )


if not _is_console_command():
    for _name in __all__[1:]:
        __getattr__(_name)
    del _name
