"""Errors of the `keras-adv` command and their one-line summaries."""

import os
import re

PROG = "keras-adv"

# keras_adv/ (this file is keras_adv/cli/_errors.py).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FILE_LINE = re.compile(r'^\s*File "([^"]+)", line \d+')
_ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?\w*(?:Error|Exception): (.*)$")
_KERAS_CALL = "Exception encountered when calling "


class UsageError(Exception):
    """A bad command line, path or data spec: one line, exit code 2."""


def _text(error: BaseException) -> str:
    return _ANSI.sub("", str(error)).strip()


def _graph_frames(text: str) -> list[str]:
    """The `File "..."` paths TensorFlow lists in a graph error's message."""
    return [m.group(1) for m in map(_FILE_LINE.match, text.splitlines()) if m]


def _message_after_frames(lines: list[str]) -> list[str]:
    """The error message that follows TensorFlow's list of graph frames.

    After the last `File "..."` line come its (indented) source line, a
    blank line and either `    SomeError: message` (an error raised in
    traced code: "in user code:") or the op's message at the start of a
    line (an op error: "Graph execution error:").
    """
    last = max(i for i, line in enumerate(lines) if _FILE_LINE.match(line))
    for i in range(last + 1, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        match = _ERROR_LINE.match(line)
        if match:
            return [match.group(1)] + lines[i + 1 :]
        if not line[0].isspace():
            return lines[i:]
    return []


def summary(error: BaseException) -> str:
    """The line of `error`'s message that names the problem.

    TensorFlow wraps errors raised while tracing or running a graph in
    "in user code:" / "Graph execution error:" and a list of frames; the
    meaningful line is the message after the frames. Keras prefixes layer
    errors with "Exception encountered when calling X.call()."; the
    meaningful line is the next one.
    """
    lines = _text(error).splitlines()
    if _graph_frames("\n".join(lines)):
        lines = _message_after_frames(lines) or lines
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        return type(error).__name__
    first = lines[0]
    if first.startswith(_KERAS_CALL) and len(lines) > 1:
        where = first[len(_KERAS_CALL) :].rstrip(".")
        return f"{lines[1]} (in {where})"
    return first


def in_package(path: str) -> bool:
    """Whether `path` is a file of the keras_adv package."""
    path = os.path.abspath(path)
    return path.startswith(_PACKAGE_DIR + os.sep)


def raised_by_keras_adv(error: BaseException) -> bool:
    """Whether `error` is one of keras_adv's own argument errors.

    That is a `ValueError` or `TypeError` raised by code of the keras_adv
    package: directly (the innermost frame of the traceback), or inside a
    traced graph (the last frame TensorFlow lists in the message).
    Anything else (TensorFlow or Keras errors, other exception types) may
    be a bug and keeps its traceback.
    """
    if not isinstance(error, ValueError | TypeError):
        return False
    frames = _graph_frames(_text(error))
    if frames:
        return in_package(frames[-1])
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return in_package(tb.tb_frame.f_code.co_filename)
