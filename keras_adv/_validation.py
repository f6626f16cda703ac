"""Argument validation shared by the public classes.

Messages follow Keras: "Invalid value received for argument `x`. Expected
... Received: x=...".
"""

import math
import numbers
import os
import sys
import tempfile

import numpy as np
import tensorflow as tf

from keras_adv._outputs import looks_like_one_hot


def invalid(name, expected, received):
    """Returns the standard message for an invalid argument value."""
    return (
        f"Invalid value received for argument `{name}`. Expected {expected}. "
        f"Received: {name}={received!r}"
    )


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(name, value, *, minimum=None, strict=False):
    """Checks that `value` is a finite real number above `minimum`."""
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(invalid(name, "a finite number", value))
    if minimum is not None:
        if strict and not value > minimum:
            raise ValueError(invalid(name, f"a number > {minimum}", value))
        if not strict and not value >= minimum:
            raise ValueError(invalid(name, f"a number >= {minimum}", value))
    return float(value)


def check_int(name, value, *, minimum=None):
    """Checks that `value` is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(invalid(name, "an integer", value))
    if minimum is not None and value < minimum:
        raise ValueError(invalid(name, f"an integer >= {minimum}", value))
    return int(value)


def check_bool(name, value):
    """Checks that `value` is a bool (numpy bools too); returns a bool."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(invalid(name, "a bool", value))
    return bool(value)


def check_choice(name, value, choices):
    """Checks that `value` (a string) is one of `choices` (case-insensitive)."""
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    raise ValueError(invalid(name, f"one of {sorted(choices)}", value))


def check_verbose(verbose, name="verbose"):
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


def check_value_range(value_range):
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


def is_variable(value):
    """True for `tf.Variable` and `keras.Variable`."""
    import keras

    return isinstance(value, (tf.Variable, keras.Variable))


def check_eps(value, name="eps"):
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


def _check_float_dtype(name, dtype, value):
    dtype = tf.as_dtype(dtype)
    if not (dtype.is_floating or dtype.is_integer) or dtype == tf.bool:
        raise TypeError(
            invalid(name, "a numeric tensor", f"{value!r} of dtype {dtype}")
        )


# ---------------------------------------------------------------- data
# Checks of the data that enters an attack, a training step or an
# evaluation: each host-side check has its in-graph twin
# (`input_assertions`, `value_summary`), for data already inside a graph.


def check_x_dtype(dtype, name="x"):
    """Raises TypeError unless `dtype` is floating point."""
    dtype = tf.as_dtype(dtype)
    if not dtype.is_floating:
        raise TypeError(
            f"Attacks need floating-point inputs in `value_range`. "
            f"Received: {name} with dtype {dtype.name}. Convert explicitly, "
            "e.g. `x.astype('float32') / 255.0` for uint8 images."
        )


def check_x(x, name="x"):
    """A float tensor from an array-like `x` (TypeError if not floating)."""
    if getattr(x, "dtype", None) is None:
        x = np.asarray(x)
    check_x_dtype(x.dtype, name)
    return tf.convert_to_tensor(x)


def check_label_dtype(y, name="y"):
    """Raises TypeError unless `y` holds numbers (not bools or strings)."""
    dtype = tf.as_dtype(y.dtype)
    if not (dtype.is_integer or dtype.is_floating) or dtype == tf.bool:
        raise TypeError(
            invalid(name, "integer class ids or one-hot rows", f"dtype {dtype}")
        )


def check_label_shape(y, x, name="y"):
    """A label tensor of shape `(batch,)`, `(batch, 1)` or `(batch, C)`.

    Raises:
        TypeError: for non-numeric labels.
        ValueError: for another rank, or a batch size other than `x`'s.
    """
    if isinstance(y, np.ndarray | list | tuple):
        y = np.asarray(y)
        if y.dtype.kind not in "iuf":
            raise TypeError(
                invalid(
                    name,
                    "integer class ids or one-hot rows",
                    f"values of dtype {y.dtype}",
                )
            )
    y = tf.convert_to_tensor(y)
    check_label_dtype(y, name)
    if len(y.shape) == 0 or len(y.shape) > 2:
        raise ValueError(
            invalid(
                name,
                "labels of shape (batch,), (batch, 1) or one-hot "
                "(batch, classes)",
                tuple(y.shape),
            )
        )
    if (
        y.shape[0] is not None
        and x.shape[0] is not None
        and y.shape[0] != x.shape[0]
    ):
        raise ValueError(
            f"x and {name} have different batch sizes: "
            f"x.shape={tuple(x.shape)}, {name}.shape={tuple(y.shape)}"
        )
    return y


def check_label_values(y, num_classes, name="y"):
    """Host-side: sparse labels are integers in `[0, num_classes)`.

    One-hot rows `(batch, C)` must have `C == num_classes`.

    Raises:
        ValueError: naming `name`, for fractional, non-finite or
            out-of-range labels, or one-hot rows of the wrong width.
    """
    shape = tuple(y.shape)
    one_hot = len(shape) == 2 and shape[-1] != 1
    if one_hot:
        if shape[-1] != num_classes:
            raise ValueError(
                f"One-hot labels have {shape[-1]} classes but the model "
                f"outputs {num_classes}."
            )
        return
    values = np.asarray(y).reshape(-1)
    if values.dtype.kind == "f" and (
        not np.all(np.isfinite(values)) or np.any(values != np.round(values))
    ):
        raise ValueError(
            invalid(name, "integer class ids", values[:8].tolist())
        )
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(
            f"Labels must be in [0, {num_classes}). Received: {name} with "
            f"labels in [{values.min():g}, {values.max():g}]"
        )


def value_summary(x):
    """[any NaN, min, max] of `x` (graph-safe; read by `check_summary`)."""
    x = tf.cast(x, tf.float32)
    return tf.stack(
        [
            tf.cast(tf.reduce_any(tf.math.is_nan(x)), tf.float32),
            tf.reduce_min(x),
            tf.reduce_max(x),
        ]
    )


def check_summary(summary, value_range):
    """Raises ValueError for a `value_summary` with NaNs or out of range."""
    has_nan, x_min, x_max = np.asarray(summary).tolist()
    if has_nan:
        raise ValueError("Received: x containing NaN values.")
    low, high = value_range
    if x_min < low - 1e-6 or x_max > high + 1e-6:
        raise ValueError(
            f"Received: x with values in [{x_min:g}, {x_max:g}], "
            f"outside value_range=({low:g}, {high:g}). Scale the "
            "inputs or set the attack's value_range."
        )


def input_assertions(x, value_range, y=None):
    """In-graph checks of attack inputs: NaN, value range, integer labels.

    The in-graph twin of `check_summary` and `check_label_values`' integer
    check. Returns a list of assertion ops (run them with
    `tf.control_dependencies` before the result that depends on the
    inputs). A failed check stops the step with a message naming the
    argument. Graph-safe and cheap (one reduction over `x`).

    Args:
        x: Float tensor of inputs.
        value_range: Pair `(low, high)`.
        y: Optional labels; fractional sparse labels fail.
    """
    x32 = tf.cast(x, tf.float32)
    low, high = value_range
    x_min, x_max = tf.reduce_min(x32), tf.reduce_max(x32)
    checks = [
        tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(tf.math.is_nan(x32))),
            ["Received: x containing NaN values."],
        ),
        tf.debugging.Assert(
            tf.logical_and(x_min >= low - 1e-6, x_max <= high + 1e-6),
            [
                "Received: x with values in [min, max] =",
                x_min,
                x_max,
                f"outside the attack's value_range=({low:g}, {high:g}). "
                "Scale the inputs (e.g. x / 255) or set the attack's "
                "value_range.",
            ],
        ),
    ]
    if y is not None:
        y = tf.convert_to_tensor(y)
        sparse = len(y.shape) < 2 or y.shape[-1] == 1
        if sparse and y.dtype.is_floating:
            checks.append(
                tf.debugging.Assert(
                    tf.reduce_all(tf.equal(y, tf.round(y))),
                    ["Received: y with fractional class labels."],
                )
            )
    return checks


# Value ranges, labels and generated outputs on the paths that take data
# from users (pairs, noise layers, losses, generators): each host check
# has an in-graph twin.


def check_value_range_of(x, value_range, name="x"):
    """Host-side: raises unless the array `x` is finite and in `value_range`.

    The check of data given to something that clips to a value range
    (`RandomLpNoise`, `make_pairs`): without it, pixels in 0..255 would be
    clipped silently into a `(0, 1)` range. The in-graph twin is
    `value_range_assertions`.

    Args:
        x: Array-like of numbers.
        value_range: Pair `(low, high)`.
        name: The argument named in the message.

    Raises:
        ValueError: naming `name`, for NaN or values outside the range.
    """
    values = np.asarray(x, dtype="float64")
    if values.size == 0:
        return
    if np.any(np.isnan(values)):
        raise ValueError(invalid(name, "values without NaN", "NaN values"))
    low, high = value_range
    x_min, x_max = float(values.min()), float(values.max())
    if x_min < low - 1e-6 or x_max > high + 1e-6:
        raise ValueError(
            invalid(
                name,
                f"values in value_range=({low:g}, {high:g}) (scale the "
                "inputs, e.g. x / 255, or set value_range to their units)",
                f"values in [{x_min:g}, {x_max:g}]",
            )
        )


def value_range_assertions(x, value_range, name="x"):
    """In-graph twin of `check_value_range_of`: a list of assertion ops.

    Run them with `tf.control_dependencies` before the result that depends
    on `x`. Graph-safe and cheap (one min and one max over `x`); under XLA
    assertions are no-ops.
    """
    x32 = tf.cast(x, tf.float32)
    low, high = value_range
    x_min, x_max = tf.reduce_min(x32), tf.reduce_max(x32)
    in_range = tf.logical_and(x_min >= low - 1e-6, x_max <= high + 1e-6)
    return [
        tf.debugging.Assert(
            tf.logical_and(
                in_range, tf.logical_not(tf.reduce_any(tf.math.is_nan(x32)))
            ),
            [
                f"Invalid value received for argument `{name}`. Expected "
                f"values in value_range=({low:g}, {high:g}) without NaN "
                "(scale the inputs, e.g. x / 255, or set value_range to "
                f"their units). Received: {name} with values in [min, max] =",
                x_min,
                x_max,
            ],
        )
    ]


def after_checks(checks, x):
    """`x`, computed after the assertion ops `checks` (graph-safe)."""
    if not checks:
        return x
    with tf.control_dependencies(checks):
        return tf.identity(x)


def label_assertions(y, num_classes, name="y", unlabelled=False):
    """In-graph check of sparse class labels: integers in `[0, classes)`.

    The in-graph twin of `check_label_values`, for labels that enter a
    graph without passing a host check (a loss called inside a user's
    step, a generator conditioned on targets). One-hot rows
    `(batch, C)` are checked for their width at trace time (a
    `ValueError`); sparse labels with one min and one max reduction
    (cheap: a loss may call this every step).

    Args:
        y: Int or float tensor of labels `(batch,)`, `(batch, 1)` or
            one-hot `(batch, C)`.
        num_classes: Int (or scalar int tensor), the number of classes.
        name: The argument named in the message.
        unlabelled: Bool, also accept `-1` (documented as "unlabelled"
            where a loss ignores such samples, e.g. VAT's).

    Returns:
        A list of assertion ops (empty for one-hot rows).

    Raises:
        ValueError: for one-hot rows whose width is not `num_classes`.
    """
    y = tf.convert_to_tensor(y)
    if len(y.shape) == 2 and y.shape[-1] is not None and y.shape[-1] != 1:
        if isinstance(num_classes, int) and y.shape[-1] != num_classes:
            raise ValueError(
                invalid(
                    name,
                    f"one-hot rows of {num_classes} classes",
                    f"rows of shape {tuple(y.shape)}",
                )
            )
        return []
    low = -1 if unlabelled else 0
    values = tf.reshape(y, [-1])
    checks = []
    if values.dtype.is_floating:
        checks.append(
            tf.debugging.Assert(
                tf.reduce_all(tf.equal(values, tf.round(values))),
                [
                    f"Invalid value received for argument `{name}`. "
                    "Expected integer class labels. Received: fractional "
                    "or non-finite labels, e.g.",
                    values,
                ],
                summarize=8,
            )
        )
    values = tf.cast(values, tf.float32)
    smallest, largest = tf.reduce_min(values), tf.reduce_max(values)
    checks.append(
        tf.debugging.Assert(
            tf.logical_and(
                smallest >= low,
                largest < tf.cast(num_classes, tf.float32),
            ),
            [
                f"Invalid value received for argument `{name}`. Expected "
                f"class labels in [{low}, num_classes) with num_classes =",
                num_classes,
                f"{'(-1: unlabelled)' if unlabelled else ''}. "
                "Received: labels from",
                smallest,
                "to",
                largest,
            ],
        )
    )
    return checks


def check_generator_output(x_shape, output_shape, name="generator"):
    """Raises unless a generator maps inputs of `x_shape` to that shape.

    A perturbation generator (`G(x)`, added to `x`) must output one value
    per input coordinate; another shape would broadcast into a wrong
    result. Batch axes (the first) are not compared; unknown dimensions
    pass.

    Raises:
        ValueError: naming `name`, with both shapes.
    """
    x_shape, output_shape = tuple(x_shape), tuple(output_shape)
    same = len(x_shape) == len(output_shape) and all(
        a is None or b is None or a == b
        for a, b in zip(x_shape[1:], output_shape[1:], strict=True)
    )
    if not same:
        raise ValueError(
            invalid(
                name,
                f"a model whose output has the shape of its input x "
                f"(a perturbation per coordinate); x has shape {x_shape}",
                f"a model with output shape {output_shape}",
            )
        )


def _expected_answers(batch, num_classes, labels):
    rows = f"({batch}, {num_classes})"
    if labels:
        return (
            f"answers of shape ({batch},) or ({batch}, 1) (class ids), or "
            f"one-hot rows {rows}"
        )
    return f"answers of shape {rows}, one row per query and class"


def check_answers(answers, batch, num_classes, labels, name="fn"):
    """Host-side: a black box's answers to `batch` queries.

    Scores `(batch, num_classes)`; with `labels`, class ids `(batch,)` or
    `(batch, 1)` in `[0, num_classes)` or one-hot rows. Anything else
    would be reshaped into rows that mix samples, or one-hot encoded into
    all-zero rows. The in-graph twin is `answer_assertions`.

    Raises:
        ValueError: naming `name`, with the shapes or the labels.
    """
    answers = np.asarray(answers)
    shape = answers.shape
    ids = labels and (len(shape) == 1 or shape[1:] == (1,))
    if shape[:1] != (batch,) or not (ids or shape[1:] == (num_classes,)):
        raise ValueError(
            invalid(
                name,
                _expected_answers(batch, num_classes, labels),
                f"answers of shape {shape} for {batch} queries",
            )
        )
    if ids:
        check_classes(
            class_ids(answers, name=name, one_hot=False),
            num_classes,
            name=name,
            owner="the black box's num_classes",
        )
    elif labels and not looks_like_one_hot(answers):
        raise ValueError(
            invalid(name, "one-hot rows (one 1 per row)", answers[:2].tolist())
        )


def answer_assertions(answers, batch, num_classes, labels, name="fn"):
    """In-graph twin of `check_answers`: assertion ops.

    Static shapes are checked at trace time (`ValueError`), the batch and
    class ids in the graph.
    """
    shape = tuple(answers.shape)
    ids = labels and (len(shape) == 1 or shape[1:] == (1,))
    if len(shape) not in (1, 2) or not (
        ids or shape[1:] in ((num_classes,), (None,))
    ):
        raise ValueError(
            invalid(
                name,
                _expected_answers("batch", num_classes, labels),
                f"answers of shape {shape}",
            )
        )
    checks = [
        tf.debugging.assert_equal(
            tf.shape(answers)[0],
            tf.cast(batch, tf.int32),
            message=f"Invalid value received for argument `{name}`. "
            "Expected one answer per query.",
        )
    ]
    if ids:
        checks += label_assertions(answers, num_classes, name=name)
    return checks


def class_ids(y, name="y", one_hot=True):
    """Host-side: int64 class ids `(n,)` from an array of labels.

    Accepts integer-valued ids of shape `(n,)` or `(n, 1)` (any numeric
    dtype) and, with `one_hot`, one-hot rows `(n, classes)` (their argmax).
    The upper bound, the number of classes, is `check_classes`' job.

    Raises:
        ValueError: naming `name`, for non-numeric, non-finite, fractional
            or negative labels, or labels of another shape.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iuf":
        raise ValueError(
            invalid(name, "integer class labels", f"labels of dtype {y.dtype}")
        )
    if y.ndim == 2 and y.shape[1] > 1 and one_hot:
        if not np.all(np.isfinite(y)):
            raise ValueError(invalid(name, "finite one-hot labels", "NaN/inf"))
        return np.argmax(y, axis=1).astype("int64")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        shapes = "(n,), (n, 1) or one-hot (n, classes)" if one_hot else ""
        shapes = shapes or "(n,) or (n, 1)"
        raise ValueError(
            invalid(name, f"class labels of shape {shapes}", y.shape)
        )
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
        raise ValueError(invalid(name, "integer class labels", y[:5].tolist()))
    if y.size and y.min() < 0:
        raise ValueError(invalid(name, "class labels >= 0", _label_span(y)))
    return y.astype("int64")


def check_classes(ids, num_classes, name="y", owner="the model's classes"):
    """Host-side: raises unless the class ids `ids` are `< num_classes`.

    Args:
        ids: Int array of class ids (see `class_ids`).
        num_classes: Int, the number of classes.
        name: The argument named in the message.
        owner: Where the number of classes comes from, for the message.
    """
    ids = np.asarray(ids)
    if ids.size and int(ids.max()) >= num_classes:
        raise ValueError(
            invalid(
                name,
                f"class labels in [0, {num_classes}) ({owner})",
                _label_span(ids),
            )
        )


def _label_span(y):
    return f"labels from {y.min():g} to {y.max():g}"


def check_same_length(x, y, name):
    """Raises unless the arrays `x` and `y` have as many samples."""
    if len(x) != len(y):
        raise ValueError(
            invalid(
                name,
                "x and y with the same number of samples",
                f"x and y of different lengths ({len(x)} and {len(y)})",
            )
        )


def check_log_dir(log_dir, run):
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
