"""Command lines the commands print, runnable as printed.

`keras-adv` and `tensorboard` are scripts of the Python environment
keras_adv is installed in; they are on the shell's `PATH` only when that
environment is (an activated virtual environment, or a pip install into
the user's Python). `python3 dev.py demo` runs keras-adv from the
project's `.venv/`, usually not activated. `command_line` prints what
runs in each case:

1. the bare name, when it is on `PATH` and is this environment's script;
2. `python3 dev.py NAME ...` in the project's `.venv/` (dev.py's
   `keras-adv` and `tensorboard` commands run the scripts there, from the
   project directory, where relative paths printed by the demo point);
3. the script's path otherwise;
4. `python -m MODULE` if the environment has no such script.
"""

import os
import shlex
import shutil
import sys
from pathlib import Path

#: The programs the commands print, and the module each script runs.
MODULES = {"keras-adv": "keras_adv.cli", "tensorboard": "tensorboard.main"}
# How the README runs dev.py.
_DEV_PYTHON = "python" if os.name == "nt" else "python3"


def _script(program: str) -> Path | None:
    """This environment's script `program`, or None."""
    name = program + (".exe" if os.name == "nt" else "")
    path = Path(sys.executable).parent / name
    return path if path.is_file() else None


def development_script() -> Path | None:
    """The `dev.py` whose `.venv/` runs this Python, or None."""
    prefix = Path(sys.prefix)
    if prefix.name != ".venv":
        return None
    dev = prefix.parent / "dev.py"
    return dev if dev.is_file() else None


def _shown(path: Path) -> str:
    """`path` relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if relative.startswith(os.pardir) else relative


def _on_path(program: str, script: Path | None) -> bool:
    found = shutil.which(program)
    if found is None or script is None:
        return False
    try:
        return os.path.samefile(found, script)
    except OSError:
        return False


def command_line(program: str, *args: object) -> str:
    """A shell command line running `program` with `args`, as printed.

    Args:
        program: `"keras-adv"` or `"tensorboard"` (see `MODULES`).
        *args: Its arguments (quoted for a POSIX shell where needed).

    Returns:
        A string, e.g. `"python3 dev.py tensorboard --logdir demo/logs"`
        (see the module docstring for the cases).
    """
    script = _script(program)
    dev = development_script()
    if _on_path(program, script):
        words = [program]
    elif dev is not None:
        words = [_DEV_PYTHON, _shown(dev), program]
    elif script is not None:
        words = [_shown(script)]
    else:
        words = [sys.executable, "-m", MODULES[program]]
    return shlex.join([*words, *(str(arg) for arg in args)])
