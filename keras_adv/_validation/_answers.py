"""Checks of what networks and black boxes answer.

A generator's output shape against its input's; a black box's answers
(probabilities, one-hot rows or labels: one row of `num_classes` per
query), host-side and in-graph.
"""

from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from keras_adv._outputs import looks_like_one_hot
from keras_adv._types import TensorLike
from keras_adv._validation._arguments import invalid
from keras_adv._validation._labels import check_classes
from keras_adv._validation._labels import class_ids
from keras_adv._validation._labels import label_assertions


def check_generator_output(
    x_shape: Iterable[int | None],
    output_shape: Iterable[int | None],
    name: str = "generator",
) -> None:
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


def _expected_answers(batch: int | str, num_classes: int, labels: bool) -> str:
    rows = f"({batch}, {num_classes})"
    if labels:
        return (
            f"answers of shape ({batch},) or ({batch}, 1) (class ids), or "
            f"one-hot rows {rows}"
        )
    return f"answers of shape {rows}, one row per query and class"


def check_answers(
    answers: Any, batch: int, num_classes: int, labels: bool, name: str = "fn"
) -> None:
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


def answer_assertions(
    answers: TensorLike,
    batch: int | TensorLike,
    num_classes: int,
    labels: bool,
    name: str = "fn",
) -> list[tf.Operation | None]:
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
