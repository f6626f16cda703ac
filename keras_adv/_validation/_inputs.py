"""Checks of the inputs that enter an attack, a step or an evaluation.

Floating dtype, NaN and the value range: each host-side check has its
in-graph twin (`input_assertions`, `value_range_assertions`,
`value_summary`), for data already inside a graph.
"""

from collections.abc import Sequence
from collections.abc import Sized
from typing import Any

import numpy as np
import tensorflow as tf

from keras_adv._types import Array
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange
from keras_adv._validation._arguments import invalid


def check_x_dtype(dtype: Any, name: str = "x") -> None:
    """Raises TypeError unless `dtype` is floating point."""
    dtype = tf.as_dtype(dtype)
    if not dtype.is_floating:
        raise TypeError(
            f"Attacks need floating-point inputs in `value_range`. "
            f"Received: {name} with dtype {dtype.name}. Convert explicitly, "
            "e.g. `x.astype('float32') / 255.0` for uint8 images."
        )


def check_x(x: Any, name: str = "x") -> Tensor:
    """A float tensor from an array-like `x` (TypeError if not floating)."""
    if getattr(x, "dtype", None) is None:
        x = np.asarray(x)
    check_x_dtype(x.dtype, name)
    return tf.convert_to_tensor(x)


def value_summary(x: TensorLike) -> Tensor:
    """[any NaN, min, max] of `x` (graph-safe; read by `check_summary`)."""
    x = tf.cast(x, tf.float32)
    return tf.stack(
        [
            tf.cast(tf.reduce_any(tf.math.is_nan(x)), tf.float32),
            tf.reduce_min(x),
            tf.reduce_max(x),
        ]
    )


def check_summary(summary: Array, value_range: ValueRange) -> None:
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


def input_assertions(
    x: TensorLike, value_range: ValueRange, y: TensorLike | None = None
) -> list[tf.Operation | None]:
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
        labels = tf.convert_to_tensor(y)
        sparse = len(labels.shape) < 2 or labels.shape[-1] == 1
        if sparse and labels.dtype.is_floating:
            checks.append(
                tf.debugging.Assert(
                    tf.reduce_all(tf.equal(labels, tf.round(labels))),
                    ["Received: y with fractional class labels."],
                )
            )
    return checks


def check_value_range_of(
    x: Any, value_range: ValueRange, name: str = "x"
) -> None:
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


def value_range_assertions(
    x: TensorLike, value_range: ValueRange, name: str = "x"
) -> list[tf.Operation | None]:
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


def after_checks(
    checks: Sequence[tf.Operation | None], x: TensorLike
) -> TensorLike:
    """`x`, computed after the assertion ops `checks` (graph-safe)."""
    if not checks:
        return x
    with tf.control_dependencies(checks):
        return tf.identity(x)


def check_same_length(x: Sized, y: Sized, name: str) -> None:
    """Raises unless the arrays `x` and `y` have as many samples."""
    if len(x) != len(y):
        raise ValueError(
            invalid(
                name,
                "x and y with the same number of samples",
                f"x and y of different lengths ({len(x)} and {len(y)})",
            )
        )
