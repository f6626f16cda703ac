"""`BlackBox`: a classifier keras_adv may only query, with a query count."""

from collections.abc import Callable
from typing import Any
from typing import Literal

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from numpy.typing import ArrayLike

from keras_adv import _validation
from keras_adv._outputs import output_kind
from keras_adv._types import Tensor
from keras_adv._types import TensorLike

OUTPUTS = ("probabilities", "logits", "labels")

#: How far from 1 the rows of probability answers may sum (answers rounded
#: to a few decimals pass).
PROBABILITY_TOLERANCE = 0.01

_NOT_PROBABILITIES = (
    "Invalid value received for argument `fn`. Expected answers that are "
    "probabilities (rows >= 0 summing to 1 within "
    f"{PROBABILITY_TOLERANCE}); for a fn that answers logits, set the "
    "BlackBox's `output` to logits. Received: "
)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def check_probabilities(answers: np.ndarray) -> None:
    """Host-side: raises unless the rows of `answers` are probabilities."""
    sums = answers.sum(axis=-1)
    if answers.size and not (
        np.all(answers >= 0.0)
        and np.all(np.abs(sums - 1.0) <= PROBABILITY_TOLERANCE)
    ):
        raise ValueError(
            _NOT_PROBABILITIES + f"rows summing from {sums.min():g} to "
            f"{sums.max():g}, values down to {answers.min():g}"
        )


def probability_assertions(answers: TensorLike) -> list[tf.Operation | None]:
    """In-graph twin of `check_probabilities`: assertion ops."""
    sums = tf.reduce_sum(answers, axis=-1)
    ok = tf.logical_and(
        tf.reduce_all(answers >= 0.0),
        tf.reduce_all(tf.abs(sums - 1.0) <= PROBABILITY_TOLERANCE),
    )
    return [
        tf.debugging.Assert(
            ok,
            [
                _NOT_PROBABILITIES + "rows summing from",
                tf.reduce_min(sums),
                "to",
                tf.reduce_max(sums),
                ", values down to",
                tf.reduce_min(answers),
            ],
        )
    ]


class BlackBox:
    """A classifier seen only through its answers: no gradients, counted.

    Wraps a Keras model or any Python callable mapping a batch of inputs to
    class probabilities `(batch, classes)`, logits `(batch, classes)` or
    labels (ids `(batch,)` or one-hot rows). Calling the wrapper returns
    float32 probabilities `(batch, classes)` (labels as one-hot rows,
    logits through a softmax) with their gradient stopped, and adds the
    batch size to `queries`, a variable updated inside graphs too (so a
    training step that queries the black box counts exactly). A Python
    callable runs through `tf.numpy_function` (it receives and returns
    numpy arrays), so it may be anything: a remote API, a model with a
    rounding or argmax stage, a scikit-learn pipeline.

    Every answer is checked (a `ValueError` naming `fn`, raised inside
    the graph of a training step as an error carrying the same message):
    one row per query and `num_classes` columns (anything else would be
    reshaped into rows that mix samples), labels that are classes in
    `[0, num_classes)` (anything else would become all-zero rows), and,
    for `output="probabilities"`, rows that are probabilities
    (non-negative, summing to 1 within `PROBABILITY_TOLERANCE`, 0.01). A
    model that answers logits is told from one that answers probabilities
    as `keras_adv.attacks.ModelLogits` does: a Keras model whose last
    layer is a linear `Dense` (or `log_softmax`) is answered through a
    softmax; any other fn that answers logits is refused with a message
    that says to pass `output="logits"`.

    Used by `keras_adv.models.AdvGAN` for black-box attacks: a surrogate is
    distilled from the answers (static distillation) or refitted on them
    while the generator trains (dynamic distillation).

    Args:
        fn: A `keras.Model` or a callable `x -> answers`.
        num_classes: Int >= 2, the number of classes.
        output: `"probabilities"`, `"logits"` (turned into probabilities
            by a softmax) or `"labels"`: what `fn` returns. Defaults to
            `"probabilities"`.

    Example:

    >>> import numpy as np, keras_adv
    >>> def labels_only(x):  # a classifier that reveals only its argmax
    ...     return (x.reshape(len(x), -1).mean(axis=1) > 0.5).astype("int64")
    >>> box = keras_adv.attacks.BlackBox(labels_only, 2, output="labels")
    >>> np.asarray(box(np.array([[0.9, 0.8], [0.1, 0.2]], "float32")))
    array([[0., 1.],
           [1., 0.]], dtype=float32)
    >>> box.query_count
    2

    Reference:
        Papernot et al., "Practical Black-Box Attacks against Machine Learning",
        AsiaCCS 2017, [arXiv:1602.02697](https://arxiv.org/abs/1602.02697); Xiao
        et al., "Generating Adversarial Examples with Adversarial Networks",
        IJCAI 2018, [arXiv:1801.02610](https://arxiv.org/abs/1801.02610).
    """

    def __init__(
        self,
        fn: keras.Model | Callable[[np.ndarray], ArrayLike],
        num_classes: int,
        output: Literal["probabilities", "logits", "labels"] = "probabilities",
    ) -> None:
        if not callable(fn):
            raise TypeError(
                _validation.invalid("fn", "a keras.Model or a callable", fn)
            )
        self.fn: Callable[..., Any] = fn
        self.num_classes = _validation.check_int(
            "num_classes", num_classes, minimum=2
        )
        self.output = _validation.check_choice("output", output, set(OUTPUTS))
        self.from_logits = self._answers_logits()
        self.queries = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="black_box_queries"
        )

    @property
    def query_count(self) -> int:
        """Int, the number of samples queried so far."""
        return int(self.queries.numpy())

    def reset_queries(self) -> None:
        """Sets the query count to 0."""
        self.queries.assign(0)

    def _answers_logits(self) -> bool:
        """Whether the answers go through a softmax (read as logits)."""
        kind = None
        if isinstance(self.fn, keras.Model):
            kind = output_kind(self.fn)
        if self.output == "logits" and kind == "probabilities":
            raise ValueError(
                _validation.invalid(
                    "output",
                    "'probabilities' for a model that ends in a softmax",
                    self.output,
                )
            )
        if self.output == "probabilities" and kind == "logits":
            return True  # a linear last layer: logits, as ModelLogits reads
        return self.output == "logits"

    def _host_answers(self, x: np.ndarray) -> np.ndarray:
        """Checked float32 probabilities for a numpy batch (host-side)."""
        if isinstance(self.fn, keras.Model):
            raw = self.fn(x, training=False)
        else:
            raw = self.fn(x)
        raw = np.asarray(raw)
        labels = self.output == "labels"
        if labels and raw.dtype == bool:  # a binary decision: ids 0 and 1
            raw = raw.astype("int64")
        _validation.check_answers(raw, len(x), self.num_classes, labels)
        if labels:
            if raw.ndim == 2 and raw.shape[1] == self.num_classes:
                return raw.astype("float32")
            ids = raw.reshape(-1).astype("int64")
            return np.eye(self.num_classes, dtype="float32")[ids]
        raw = raw.astype("float32")
        if self.from_logits:
            return _softmax(raw)
        check_probabilities(raw)
        return raw

    def _graph_answers(self, x: Tensor) -> Tensor:
        """Checked float32 probabilities of a Keras model (in-graph)."""
        raw = self.fn(x, training=False)
        labels = self.output == "labels"
        checks = _validation.answer_assertions(
            raw, tf.shape(x)[0], self.num_classes, labels
        )
        if labels and raw.shape[-1] == self.num_classes:
            answers = ops.cast(raw, "float32")
        elif labels:
            ids = ops.cast(ops.reshape(raw, [-1]), "int32")
            answers = ops.one_hot(ids, self.num_classes)
        elif self.from_logits:
            answers = ops.softmax(ops.cast(raw, "float32"), axis=-1)
        else:
            answers = ops.cast(raw, "float32")
            checks += probability_assertions(answers)
        return _validation.after_checks(checks, answers)

    def __call__(self, x: TensorLike) -> Tensor:
        """Answers for the batch `x`, float32 `(batch, classes)`.

        Graph-safe. Labels become one-hot rows and logits probabilities;
        the query count grows by the batch size.

        Raises:
            ValueError: for answers of another shape, labels that are not
                classes, or scores that are not probabilities (in a graph,
                a TensorFlow error carrying the same message).
        """
        x = tf.convert_to_tensor(x)
        if tf.executing_eagerly():
            answers = tf.constant(self._host_answers(x.numpy()))
        elif isinstance(self.fn, keras.Model):
            answers = self._graph_answers(x)
        else:
            answers = tf.numpy_function(
                self._host_answers, [x], Tout=tf.float32, stateful=True
            )
            answers.set_shape((x.shape[0], self.num_classes))
        answers = tf.stop_gradient(answers)
        with tf.control_dependencies(
            [self.queries.assign_add(tf.cast(tf.shape(x)[0], tf.int64))]
        ):
            return tf.identity(answers)

    def predict(self, x: ArrayLike, batch_size: int = 256) -> np.ndarray:
        """Eager answers for an array, in batches (counted).

        Returns:
            A float32 numpy array `(n, classes)`.
        """
        batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
        x = np.asarray(x)
        parts = [
            np.asarray(self(x[i : i + batch_size]))
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def labels(self, x: ArrayLike, batch_size: int = 256) -> np.ndarray:
        """The black box's class ids for `x` (counted), int64 `(n,)`."""
        return self.predict(x, batch_size).argmax(axis=-1)

    def __repr__(self) -> str:
        return (
            f"BlackBox(fn={self.fn!r}, num_classes={self.num_classes}, "
            f"output={self.output!r})"
        )
