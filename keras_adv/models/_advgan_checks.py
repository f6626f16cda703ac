"""Checks of `AdvGAN`'s networks and targeting arguments.

Each raises the `_validation` message naming the argument; `AdvGAN`
calls the argument checks from `__init__`, before any graph is built, and
the data checks where data enters: `fit`, `evaluate` and `generate` on the
host, the training and test steps and `call` in the graph.
"""

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _validation
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange


def check_target_model(target_model: object) -> keras.Model:
    """Checks that the attacked classifier is a `keras.Model`."""
    if not isinstance(target_model, keras.Model):
        raise TypeError(
            _validation.invalid("target_model", "a keras.Model", target_model)
        )
    return target_model


def num_classes_of(target_model: keras.Model, num_classes: int | None) -> int:
    """`num_classes` checked, or read from the target model's output."""
    if num_classes is not None:
        return _validation.check_int("num_classes", num_classes, minimum=2)
    try:
        classes = target_model.outputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError, ValueError):
        classes = None
    if classes is None:
        raise ValueError(
            _validation.invalid(
                "num_classes",
                "the number of classes (it cannot be read from a subclassed "
                "or unbuilt target model)",
                None,
            )
        )
    return int(classes)


def check_target_fn(
    target_fn: Callable[..., Any] | None, targeted: bool
) -> Callable[..., Any] | None:
    """Checks that `target_fn` is None or a callable of a targeted AdvGAN."""
    if target_fn is None:
        return None
    if not callable(target_fn):
        raise TypeError(
            _validation.invalid("target_fn", "a callable", target_fn)
        )
    if not targeted:
        raise ValueError(
            _validation.invalid(
                "target_fn", "None for an untargeted AdvGAN", target_fn
            )
        )
    return target_fn


def check_generator(
    generator: keras.Model, targeted: bool, num_classes: int
) -> bool:
    """Whether `generator` is conditioned (`[x, one-hot target]` inputs).

    Raises:
        ValueError: if the generator's inputs do not match `targeted`
            (two inputs exactly when targeted) or its target input is not
            `num_classes` wide.
    """
    inputs = getattr(generator, "inputs", None) or []
    conditioned = len(inputs) == 2
    if targeted != conditioned:
        raise ValueError(
            _validation.invalid(
                "generator",
                "a generator with inputs [x, one-hot target] for a "
                "targeted AdvGAN and one input x otherwise "
                f"(targeted={targeted})",
                f"a generator with {len(inputs)} input(s)",
            )
        )
    if conditioned and inputs[1].shape[-1] != num_classes:
        raise ValueError(
            _validation.invalid(
                "generator",
                f"a target input of width {num_classes}",
                tuple(inputs[1].shape),
            )
        )
    return conditioned


# ------------------------------------------------------------- data
# The inputs, labels and targets given to `fit`, `evaluate` and `generate`:
# host-side for arrays, with in-graph twins for the batches of a pipeline.


def _is_array(value: object) -> bool:
    return isinstance(value, np.ndarray | list) or (
        tf.is_tensor(value) and tf.executing_eagerly()
    )


def check_arrays(
    x: Any, y: Any, value_range: ValueRange, num_classes: int, y_name: str = "y"
) -> None:
    """Host-side: inputs in `value_range`, labels classes of the target.

    Skipped for what is not an array (a `tf.data.Dataset`, a generator):
    the training and test steps check those batches in the graph
    (`batch_assertions`).

    Raises:
        ValueError: naming `x` or `y_name`.
    """
    if _is_array(x):
        _validation.check_value_range_of(x, value_range, name="x")
    if y is not None and _is_array(y):
        y = np.asarray(y)
        if y.dtype.kind not in "iuf":
            raise ValueError(
                _validation.invalid(
                    y_name, "integer class ids or one-hot rows", y.dtype
                )
            )
        _validation.check_label_values(y, num_classes, name=y_name)


def validation_arrays(validation_data: Any) -> tuple[Any, Any] | None:
    """`(x, y)` of a `fit(validation_data=...)` tuple of arrays, else None."""
    if isinstance(validation_data, tuple) and len(validation_data) >= 2:
        return validation_data[0], validation_data[1]
    return None


def batch_assertions(
    x: TensorLike, value_range: ValueRange
) -> list[tf.Operation | None]:
    """In-graph twin of `check_arrays` for `x`: assertion ops."""
    return _validation.value_range_assertions(x, value_range, name="x")


def with_label_checks(
    labels: TensorLike, num_classes: int | TensorLike, name: str
) -> TensorLike:
    """`labels` after the in-graph check that they are classes."""
    return _validation.after_checks(
        _validation.label_assertions(labels, num_classes, name=name), labels
    )
