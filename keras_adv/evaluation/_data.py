"""Host-side evaluation data: validated numpy batches, copies not views.

`Data` iterates over `(x, y)` arrays or a `tf.data.Dataset` and checks
every batch before it reaches a graph (floating-point x without NaN inside
every attack's value range; integer class ids >= 0, one-hot rows
recognised only in batches), through the shared checks of
`keras_adv._validation`. `evaluate_robustness` streams it; the monitor
keeps a fixed subset (`take`).
"""

from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _validation
from keras_adv._types import ValueRange


def _one_hot_width(y: Any) -> int | None:
    shape = np.shape(y)
    return shape[1] if len(shape) == 2 and shape[1] > 1 else None


def _is_one_hot_row(y: Any) -> bool:
    y = np.asarray(y)
    return (
        y.ndim == 1
        and y.size >= 2
        and bool(np.all((y == 0) | (y == 1)))
        and int(np.sum(y)) == 1
    )


def _dataset_layout(
    data: tf.data.Dataset, sample_rank: int | None, name: str
) -> str:
    """`"samples"` or `"batches"`: what one element of `data` holds.

    Scalar labels mean single samples, labels of rank 2 batches. Labels of
    rank 1 are either a batch of class ids or the one-hot row of a single
    sample. The input rank of the model decides when it is known; else a
    `None` leading dimension of x and y (how `.batch()` marks batches)
    means batches and different static lengths mean a single sample; when
    both have the same static length (e.g. as many classes as the image
    height), the first labels decide: a one-hot row means a single sample.
    """
    x_spec, y_spec = data.element_spec[:2]
    x_shape, y_shape = x_spec.shape, y_spec.shape
    if x_shape.rank is None or y_shape.rank is None or y_shape.rank >= 2:
        return "batches"
    if y_shape.rank == 0:
        return "samples"
    if sample_rank is not None and x_shape.rank in (
        sample_rank,
        sample_rank + 1,
    ):
        layout = "samples" if x_shape.rank == sample_rank else "batches"
    elif x_shape.rank == 0:
        layout = "samples"
    else:
        n_x, n_y = x_shape[0], y_shape[0]
        if n_x is None and n_y is None:
            layout = "batches"
        elif n_x is not None and n_y is not None and n_x != n_y:
            layout = "samples"
        else:
            first = next(iter(data.take(1)), None)
            one_hot = first is not None and _is_one_hot_row(first[1])
            layout = "samples" if one_hot else "batches"
    if layout == "samples":
        read_as_batches = (
            "; read as batches, x and y would have different lengths"
            if x_shape.rank and x_shape[0] not in (None, y_shape[0])
            else ""
        )
        raise ValueError(
            f"Invalid value received for argument `{name}`: its elements "
            "are single samples with one-hot labels (x element shape "
            f"{tuple(x_shape)}, y element shape {tuple(y_shape)})"
            f"{read_as_batches}. Unbatched datasets need scalar labels: "
            "batch the dataset with `.batch(n)` (one-hot labels are read "
            "per batch) or map the labels to class ids with `tf.argmax`."
        )
    return layout


class Data:
    """Validated `(x, y)` numpy batches from arrays or a `tf.data.Dataset`.

    Iterating yields `(x, y)` copies (never views of the caller's arrays):
    x floating point (float64 becomes float32), y int64 class ids. Every
    batch is checked on the host before it reaches a graph: x has no NaN
    and lies inside every value range of `value_ranges`; labels are
    integer-valued and >= 0 (the upper bound, the number of classes, is
    checked by `Evaluator.check_labels`). The iterator can be iterated
    more than once.

    Args:
        data: A pair `(x, y)` or triple `(x, y, sample_weight)` of arrays
            (weights ignored), or a `tf.data.Dataset` of such elements,
            batched or not.
        batch_size: Int, batch size for arrays and unbatched datasets.
        max_samples: Optional int, stop after this many samples.
        name: The argument named in error messages.
        value_ranges: Optional dict `attack name -> (low, high)`.
        sample_rank: Optional int, the rank of one input sample (the
            model's input rank without the batch axis), which tells single
            samples from batches in a dataset with labels of rank 1.

    Attributes:
        num_batches: Int, or None when unknown.
        one_hot_width: Number of columns of one-hot labels, None for ids
            (known after the first batch).
    """

    def __init__(
        self,
        data: Any,
        batch_size: int,
        max_samples: int | None = None,
        name: str = "data",
        value_ranges: Mapping[str, ValueRange] | None = None,
        sample_rank: int | None = None,
    ) -> None:
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        if max_samples is not None:
            max_samples = _validation.check_int(
                "max_samples", max_samples, minimum=1
            )
        self.max_samples = max_samples
        self.name = name
        self.value_ranges = dict(value_ranges or {})
        self.one_hot_width: int | None = None
        self.num_batches: int | None
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._dataset: tf.data.Dataset | None = None
        if isinstance(data, tf.data.Dataset):
            self._dataset = self._prepare_dataset(data, sample_rank)
        elif isinstance(data, list | tuple) and len(data) in (2, 3):
            self._arrays = self._prepare_arrays(data[0], data[1])
        else:
            raise TypeError(
                _validation.invalid(
                    name,
                    "a pair (x, y) of arrays or a tf.data.Dataset",
                    type(data).__name__,
                )
            )

    def _prepare_arrays(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim < 2 or y.ndim == 0:
            raise ValueError(
                _validation.invalid(
                    self.name,
                    "arrays x of shape (n, ...) and labels y of shape (n, ...)",
                    f"x of shape {x.shape} and y of shape {y.shape}",
                )
            )
        _validation.check_same_length(x, y, self.name)
        n = (
            len(x)
            if self.max_samples is None
            else min(len(x), self.max_samples)
        )
        if n == 0:
            raise ValueError(
                _validation.invalid(self.name, "at least one sample", 0)
            )
        _validation.check_x_dtype(x.dtype, self.name)
        self.one_hot_width = _one_hot_width(y)
        self.num_batches = -(-n // self.batch_size)
        return x[:n], _validation.class_ids(y[:n], self.name)

    def _prepare_dataset(
        self, data: tf.data.Dataset, sample_rank: int | None
    ) -> tf.data.Dataset:
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) not in (2, 3):
            raise ValueError(
                _validation.invalid(
                    self.name,
                    "a tf.data.Dataset of (x, y) or (x, y, sample_weight)",
                    spec,
                )
            )
        _validation.check_x_dtype(spec[0].dtype, self.name)
        if _dataset_layout(data, sample_rank, self.name) == "samples":
            data = data.batch(self.batch_size)
        cardinality = int(data.cardinality())
        if (
            cardinality == tf.data.INFINITE_CARDINALITY
            and self.max_samples is None
        ):
            raise ValueError(
                "The dataset is infinite (e.g. `.repeat()` without a count); "
                "pass `max_samples` to evaluate a fixed number of samples."
            )
        known = cardinality >= 0 and self.max_samples is None
        self.num_batches = cardinality if known else None
        return data

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._arrays is not None:
            x, y = self._arrays
            for start in range(0, len(x), self.batch_size):
                stop = start + self.batch_size
                yield self._check_x(x[start:stop]), y[start:stop].copy()
            return
        seen = 0
        for element in self._dataset:  # type: ignore[union-attr]
            x = np.asarray(element[0])
            labels = np.asarray(element[1])
            if len(x) != len(labels):
                raise ValueError(
                    "The dataset's x and y batches have different lengths "
                    f"({len(x)} and {len(labels)}). Unbatched datasets need "
                    "scalar labels; batch one-hot labels with `.batch()`."
                )
            if self.max_samples is not None:
                x = x[: self.max_samples - seen]
                labels = labels[: self.max_samples - seen]
            if len(x):
                width = _one_hot_width(labels)
                if self.one_hot_width is None:
                    self.one_hot_width = width
                yield self._check_x(x), _validation.class_ids(labels, self.name)
            seen += len(x)
            if self.max_samples is not None and seen >= self.max_samples:
                return
        if seen == 0:
            raise ValueError(
                _validation.invalid(self.name, "at least one sample", 0)
            )

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        """A float copy of the batch `x`, checked for NaN and value ranges."""
        dtype = "float32" if x.dtype == np.float64 else x.dtype
        x = np.array(x, dtype=dtype, copy=True)
        if x.ndim < 2:
            raise ValueError(
                _validation.invalid(
                    self.name, "inputs x of shape (n, ...)", x.shape
                )
            )
        if np.isnan(x).any():
            raise ValueError(
                _validation.invalid(
                    self.name,
                    "inputs x without NaN values",
                    f"x containing {int(np.isnan(x).sum())} NaN value(s)",
                )
            )
        low, high = float(np.min(x)), float(np.max(x))
        for attack, (a_low, a_high) in self.value_ranges.items():
            if low < a_low - 1e-6 or high > a_high + 1e-6:
                raise ValueError(
                    _validation.invalid(
                        self.name,
                        f"inputs in the value_range ({a_low:g}, {a_high:g}) "
                        f"of attack {attack!r} (scale the inputs or set the "
                        "attack's value_range)",
                        f"x with values in [{low:g}, {high:g}]",
                    )
                )
        return x


def take(
    data: Any, max_samples: int | None, batch_size: int = 256, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The first `max_samples` of `data` as validated numpy copies `(x, y)`.

    Keyword arguments go to `Data`.
    """
    batches = Data(data, batch_size, max_samples, **kwargs)
    xs, ys = zip(*batches, strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def sample_rank(model: keras.Model) -> int | None:
    """The rank of one input sample of `model`, None when unknown."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not isinstance(inputs, list | tuple) or len(inputs) != 1:
        return None
    return len(inputs[0].shape) - 1
