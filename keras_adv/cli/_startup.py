"""TensorFlow's start-up lines, kept off the command's output.

TensorFlow writes log lines to stderr when it loads and when it first
looks for devices. Three kinds, as measured with TensorFlow 2.21 on a
CPU machine:

* C++ log lines that honour `TF_CPP_MIN_LOG_LEVEL`: the CPU-instructions
  notice of `cpu_feature_guard` (info, hidden from level 1) and, on
  machines without a usable GPU, `E0000 ... failed call to cuInit`
  (an error, hidden from level 3), which appears when the devices are
  listed;
* lines written while the libraries load, before TensorFlow's log
  settings apply, which no variable hides: `WARNING: All log messages
  before absl::InitializeLog() is called are written to STDERR`, the
  oneDNN notice (`TF_ENABLE_ONEDNN_OPTS=0` would hide it but also switch
  oneDNN's kernels off, changing results and speed) and "Could not find
  cuda drivers on your machine" (`CUDA_VISIBLE_DEVICES` does not hide
  it);
* anything else (warnings, errors that stop the command): kept.

`prepare` sets `TF_CPP_MIN_LOG_LEVEL=3` unless the user set it (their
level is kept), and `held_back` holds stderr back while TensorFlow loads,
then writes it out without the start-up notices of the second kind.
Nothing is hidden with `--debug`: TensorFlow then logs as configured.
Standard library only: this runs before TensorFlow is imported.
"""

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# 3: no C++ info, warning or error lines (errors that stop a command are
# Python exceptions, which the command reports).
QUIET_LEVEL = "3"

#: Parts of the lines TensorFlow writes while it loads, before its log
#: level applies (TensorFlow 2.16 to 2.21).
STARTUP_NOTICES = (
    "All log messages before absl::InitializeLog() is called are written "
    "to STDERR",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine, GPU will not be used",
)


def prepare(debug: bool) -> bool:
    """Quiets TensorFlow's C++ logs, unless `debug` or the user set a level.

    Must run before TensorFlow is imported.

    Returns:
        Whether to hold back the start-up notices (`held_back`): not with
        `debug`.
    """
    if debug:
        return False
    os.environ.setdefault(LOG_LEVEL, QUIET_LEVEL)
    return True


def is_startup_notice(line: str) -> bool:
    """Whether `line` is one of TensorFlow's start-up notices."""
    return any(notice in line for notice in STARTUP_NOTICES)


def _flush() -> None:
    """Python's buffered writes to stderr, out to file descriptor 2."""
    for stream in (sys.stderr, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()


@contextlib.contextmanager
def held_back(enabled: bool = True) -> Iterator[None]:
    """Holds back stderr (file descriptor 2) inside the block.

    At the end of the block (also after an exception) what was written is
    written to stderr, without TensorFlow's start-up notices. A temporary
    file, not a pipe, holds it: a large output cannot block the process.
    """
    if not enabled:
        yield
        return
    try:
        _flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no usable stderr
        yield
        return
    with tempfile.TemporaryFile() as held:
        try:
            os.dup2(held.fileno(), 2)
            yield
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            kept = [
                line
                for line in text.splitlines(keepends=True)
                if not is_startup_notice(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
