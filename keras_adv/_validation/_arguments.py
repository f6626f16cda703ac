"""Checks of constructor and call arguments (numbers, choices, eps).

Messages follow Keras: "Invalid value received for argument `x`. Expected
... Received: x=...".
"""

import math
import numbers
import os
import sys
import tempfile
from collections.abc import Collection
from typing import Any
from typing import TypeGuard
from typing import TypeVar
from typing import cast

import numpy as np
import tensorflow as tf

from keras_adv._types import Eps

_Choice = TypeVar("_Choice", bound=str)


def invalid(name: str, expected: str, received: object) -> str:
    """Returns the standard message for an invalid argument value."""
    return (
        f"Invalid value received for argument `{name}`. Expected {expected}. "
        f"Received: {name}={received!r}"
    )


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    strict: bool = False,
    maximum: float | None = None,
) -> float:
    """Checks that `value` is a finite real number above `minimum`.

    `strict` makes `minimum` exclusive; `maximum` is inclusive.
    """
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(invalid(name, "a finite number", value))
    if minimum is not None:
        if strict and not value > minimum:
            raise ValueError(invalid(name, f"a number > {minimum}", value))
        if not strict and not value >= minimum:
            raise ValueError(invalid(name, f"a number >= {minimum}", value))
    if maximum is not None and not value <= maximum:
        raise ValueError(invalid(name, f"a number <= {maximum}", value))
    return float(value)


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Checks that `value` is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(invalid(name, "an integer", value))
    if minimum is not None and value < minimum:
        raise ValueError(invalid(name, f"an integer >= {minimum}", value))
    return int(value)


def check_bool(name: str, value: object) -> bool:
    """Checks that `value` is a bool (numpy bools too); returns a bool."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(invalid(name, "a bool", value))
    return bool(value)


def check_choice(
    name: str, value: _Choice, choices: Collection[str]
) -> _Choice:
    """Checks that `value` (a string) is one of `choices` (case-insensitive).

    Returns `value` lower-cased: a `Literal` annotation of `value` (whose
    choices are lower-case) holds for the result too.
    """
    if isinstance(value, str) and value.lower() in choices:
        return cast(_Choice, value.lower())
    raise ValueError(invalid(name, f"one of {sorted(choices)}", value))


def check_verbose(verbose: int | str, name: str = "verbose") -> int:
    """0, 1 or 2 from `verbose`; `"auto"` is 1 where someone watches.

    As in Keras: 0 is silent, 1 shows progress bars, 2 one line per stage.
    `"auto"` means 1 on a terminal or in a notebook, 2 otherwise (a log
    file gets the lines without the bars' redraws).
    """
    if verbose == "auto":
        interactive = "ipykernel" in sys.modules or (
            hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        )
        return 1 if interactive else 2
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(invalid(name, "0, 1, 2 or 'auto'", verbose))
    return int(verbose)


def check_value_range(value_range: Any) -> tuple[float, float]:
    """Checks `(low, high)` with finite low < high; returns floats."""
    try:
        low, high = value_range
    except (TypeError, ValueError):
        raise ValueError(
            invalid("value_range", "a pair (low, high)", value_range)
        ) from None
    for v in (low, high):
        if not _is_number(v) or not math.isfinite(v):
            raise ValueError(
                invalid("value_range", "two finite numbers", value_range)
            )
    if not low < high:
        raise ValueError(
            invalid("value_range", "(low, high) with low < high", value_range)
        )
    return (float(low), float(high))


def is_variable(value: object) -> bool:
    """True for `tf.Variable` and `keras.Variable`."""
    import keras

    return isinstance(value, (tf.Variable, keras.Variable))


def check_eps(value: Any, name: str = "eps") -> Eps:
    """Validates eps: a number >= 0, a (batch,) array/tensor or a variable.

    Concrete values (numbers, numpy arrays, eager tensors, variables read
    eagerly) are checked for type, negativity, NaN and infinity; symbolic
    tensors inside a traced graph cannot be checked here and are passed
    through (their dtype is still checked).

    Raises:
        TypeError: for bools, strings and other non-numeric values.
        ValueError: for negative, NaN or infinite values or a rank > 1.
    """
    if isinstance(value, bool | np.bool_):
        raise TypeError(invalid(name, "a number >= 0 (not a bool)", value))
    if _is_number(value):
        return check_number(name, value, minimum=0.0)
    concrete = None
    if is_variable(value):
        _check_float_dtype(name, value.dtype, value)
        if tf.executing_eagerly():
            concrete = np.asarray(value.numpy())
    elif isinstance(value, np.ndarray | list | tuple):
        array = np.asarray(value)
        if array.dtype.kind not in "iuf":
            raise TypeError(
                invalid(name, "a number or an array of numbers", value)
            )
        concrete = array.astype("float64")
    elif tf.is_tensor(value):
        _check_float_dtype(name, value.dtype, value)
        if tf.executing_eagerly() and hasattr(value, "numpy"):
            concrete = np.asarray(value.numpy())
    else:
        raise TypeError(
            invalid(
                name, "a number >= 0, a (batch,) array or a variable", value
            )
        )
    if concrete is not None:
        if concrete.ndim > 1:
            raise ValueError(
                invalid(name, "a scalar or a per-sample vector", concrete.shape)
            )
        if not np.all(np.isfinite(concrete)) or np.any(concrete < 0):
            raise ValueError(
                invalid(name, "finite values >= 0", concrete.tolist())
            )
    return value


def _check_float_dtype(name: str, dtype: Any, value: object) -> None:
    dtype = tf.as_dtype(dtype)
    if not (dtype.is_floating or dtype.is_integer) or dtype == tf.bool:
        raise TypeError(
            invalid(name, "a numeric tensor", f"{value!r} of dtype {dtype}")
        )


def check_log_dir(
    log_dir: str | os.PathLike[str] | None, run: str
) -> str | None:
    """A TensorBoard `log_dir` as a string, or None, checked now.

    Raises when the run directory `<log_dir>/<run>` cannot be written (a
    path component is a file, or the deepest existing directory is not
    writable), so that a callback fails at construction rather than when
    training starts. Remote paths (`gs://` and the like) are left to
    `tf.summary`. Nothing is created.

    Raises:
        TypeError: for a `log_dir` that is not a path.
        ValueError: for a run directory that cannot be written.
    """
    if log_dir is None:
        return None
    if not isinstance(log_dir, str | os.PathLike):
        raise TypeError(invalid("log_dir", "a path or None", log_dir))
    log_dir = os.fspath(log_dir)
    if "://" in log_dir:
        return log_dir
    path = os.path.abspath(os.path.join(log_dir, run))
    while not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        if not os.path.isdir(path):
            raise NotADirectoryError(f"{path!r} is an existing file")
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ValueError(
            invalid("log_dir", f"a writable directory ({e})", log_dir)
        ) from None
    return log_dir
