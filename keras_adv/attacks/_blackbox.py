"""`BlackBox`: a classifier keras_adv may only query, with a query count."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _validation

OUTPUTS = ("probabilities", "labels")


class BlackBox:
    """A classifier seen only through its answers: no gradients, counted.

    Wraps a Keras model or any Python callable mapping a batch of inputs to
    class probabilities `(batch, classes)` or labels (ids `(batch,)` or
    one-hot rows). Calling the wrapper returns float32 answers
    `(batch, classes)` (labels as one-hot rows) with their gradient
    stopped, and adds the batch size to `queries`, a variable updated
    inside graphs too (so a training step that queries the black box
    counts exactly). A Python callable runs through `tf.numpy_function`
    (it receives and returns numpy arrays), so it may be anything: a remote
    API, a model with a rounding or argmax stage, a scikit-learn pipeline.

    Used by `keras_adv.models.AdvGAN` for black-box attacks: a surrogate is
    distilled from the answers (static distillation) or refitted on them
    while the generator trains (dynamic distillation).

    Args:
        fn: A `keras.Model` or a callable `x -> answers`.
        num_classes: Int >= 2, the number of classes.
        output: `"probabilities"` or `"labels"`: what `fn` returns.
            Defaults to `"probabilities"`.

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

    def __init__(self, fn, num_classes, output="probabilities"):
        if not callable(fn):
            raise TypeError(
                _validation.invalid("fn", "a keras.Model or a callable", fn)
            )
        self.fn = fn
        self.num_classes = _validation.check_int(
            "num_classes", num_classes, minimum=2
        )
        self.output = _validation.check_choice("output", output, set(OUTPUTS))
        self.queries = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="black_box_queries"
        )

    @property
    def query_count(self):
        """Int, the number of samples queried so far."""
        return int(self.queries.numpy())

    def reset_queries(self):
        """Sets the query count to 0."""
        self.queries.assign(0)

    def _answer(self, x):
        if isinstance(self.fn, keras.Model):
            return self.fn(x, training=False)
        probabilities = self.output == "probabilities"
        dtype = "float32" if probabilities else "int64"

        def run(batch):
            return np.asarray(self.fn(batch)).astype(dtype)

        return tf.numpy_function(
            run, [x], Tout=tf.as_dtype(dtype), stateful=True
        )

    def __call__(self, x):
        """Answers for the batch `x`, float32 `(batch, classes)`.

        Graph-safe. Labels become one-hot rows; the query count grows by
        the batch size.
        """
        x = tf.convert_to_tensor(x)
        answers = self._answer(x)
        answers = tf.stop_gradient(answers)
        if self.output == "labels":
            answers = self._one_hot(answers)
        else:
            answers = ops.reshape(
                ops.cast(answers, "float32"), (-1, self.num_classes)
            )
        with tf.control_dependencies(
            [self.queries.assign_add(tf.cast(tf.shape(x)[0], tf.int64))]
        ):
            return tf.identity(answers)

    def _one_hot(self, answers):
        answers = tf.convert_to_tensor(answers)
        if answers.shape.rank == 2 and answers.shape[-1] == self.num_classes:
            return ops.cast(answers, "float32")
        ids = ops.cast(ops.reshape(answers, [-1]), "int32")
        return ops.one_hot(ids, self.num_classes)

    def predict(self, x, batch_size=256):
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

    def labels(self, x, batch_size=256):
        """The black box's class ids for `x` (counted), int64 `(n,)`."""
        return self.predict(x, batch_size).argmax(axis=-1)

    def __repr__(self):
        return (
            f"BlackBox(fn={self.fn!r}, num_classes={self.num_classes}, "
            f"output={self.output!r})"
        )
