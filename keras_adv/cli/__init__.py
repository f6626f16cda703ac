"""The `keras-adv` command: `evaluate` a saved model, `train`, `demo`.

    keras-adv evaluate MODEL.keras --data mnist-subset --attack fgsm,pgd \\
        --eps 0.1,0.2,0.3 --out DIR [--certify ibp,crown_ibp]
    keras-adv train MODEL.keras [--method pgd] [--eps 0.3] [--epochs 15]
    keras-adv demo [--epochs 20] [--out keras_adv_demo] [--seed 0]

Importing this package has no side effects and does not import TensorFlow:
the arguments, paths (the model file is a valid `.keras` archive, npz files
exist, a tfds dataset is prepared locally) and data specs are checked with
the standard library first, and only then does the command import keras_adv
and TensorFlow.

Errors (the last line on stderr is always `keras-adv[ COMMAND]: error:
...`):

* usage errors (bad options, missing or invalid files, unknown or
  unprepared datasets): one line, exit code 2;
* keras_adv's own `ValueError`/`TypeError` while running (a model that does
  not fit the data, labels out of range, arguments the library rejects,
  also when raised inside a TensorFlow graph): one line naming the
  problem, exit code 1;
* anything else (TensorFlow or Keras errors, bugs): the traceback, then one
  line with the meaningful line of the message, exit code 1.

`--debug` (before or after the command) lets every error after parsing
propagate with its full traceback (Keras' traceback filtering off).

Output: keras_adv's own warnings are one line each, `keras-adv: warning:
...` on stderr. TensorFlow's start-up lines are kept off the output (see
`_startup`; `TF_CPP_MIN_LOG_LEVEL` is 3 unless set), except with
`--debug`. Commands that the output suggests are printed runnable
(`_shell`).
"""

import argparse
import contextlib
import importlib
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from collections.abc import Sequence
from typing import TextIO

from keras_adv.cli import _checks
from keras_adv.cli import _parser
from keras_adv.cli import _startup
from keras_adv.cli._errors import PROG
from keras_adv.cli._errors import UsageError
from keras_adv.cli._errors import in_package
from keras_adv.cli._errors import raised_by_keras_adv
from keras_adv.cli._errors import summary

__all__ = ["main"]


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """keras_adv's warnings as `keras-adv: warning: ...` lines."""
    show = warnings.showwarning

    def one_line(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not in_package(filename):
            return show(message, category, filename, lineno, file, line)
        sys.stdout.flush()
        print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = one_line
    try:
        yield
    finally:
        warnings.showwarning = show


def _run(args: argparse.Namespace) -> int:
    """Imports the command's module (and TensorFlow) and runs it."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    quiet = _startup.prepare(args.debug)
    with _startup.held_back(quiet):
        command = importlib.import_module(f"keras_adv.cli._{args.command}")
    if not args.debug:
        with _one_line_warnings():
            return command.run(args)
    import keras

    filtering = keras.config.is_traceback_filtering_enabled()
    keras.config.disable_traceback_filtering()
    try:
        return command.run(args)
    finally:
        if filtering:
            keras.config.enable_traceback_filtering()


def main(argv: Sequence[object] | None = None) -> int:
    """Entry point of `keras-adv`; returns (or exits with) a status code.

    Args:
        argv: List of arguments without the program name. Defaults to
            `sys.argv[1:]`.

    Returns:
        0 on success. Errors exit (`SystemExit`) with code 2 (usage) or 1
        (while running); see the module docstring.
    """
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    command = _parser.command_of(argv)
    where = f"{PROG} {command}" if command else PROG
    debug = "--debug" in argv
    try:
        args = _parser.build_parser().parse_args(argv)
        _checks.check(args)
        return _run(args)
    except UsageError as error:
        if debug and error.__cause__ is not None:
            raise
        print(f"{where}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        if debug:
            raise
        if not raised_by_keras_adv(error):
            traceback.print_exc()
        print(f"{PROG}: error: {summary(error)}", file=sys.stderr)
        raise SystemExit(1) from None
