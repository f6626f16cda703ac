"""Checks of labels and targets: integer class ids in `[0, classes)`.

Sparse, `(batch, 1)` or one-hot; host-side (`check_label_values`,
`class_ids`, `check_classes`) and in-graph (`label_assertions`, with `-1`
allowed only where documented as "unlabelled").
"""

from typing import Any

import numpy as np
import tensorflow as tf

from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._validation._arguments import invalid


def check_label_dtype(y: TensorLike, name: str = "y") -> None:
    """Raises TypeError unless `y` holds numbers (not bools or strings)."""
    dtype = tf.as_dtype(y.dtype)
    if not (dtype.is_integer or dtype.is_floating) or dtype == tf.bool:
        raise TypeError(
            invalid(name, "integer class ids or one-hot rows", f"dtype {dtype}")
        )


def check_label_shape(y: Any, x: TensorLike, name: str = "y") -> Tensor:
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


def check_label_values(
    y: TensorLike, num_classes: int, name: str = "y"
) -> None:
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


def label_assertions(
    y: TensorLike,
    num_classes: int | TensorLike,
    name: str = "y",
    unlabelled: bool = False,
) -> list[tf.Operation | None]:
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


def class_ids(y: Any, name: str = "y", one_hot: bool = True) -> np.ndarray:
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


def check_classes(
    ids: Any,
    num_classes: int,
    name: str = "y",
    owner: str = "the model's classes",
) -> None:
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


def _label_span(y: np.ndarray) -> str:
    return f"labels from {y.min():g} to {y.max():g}"
