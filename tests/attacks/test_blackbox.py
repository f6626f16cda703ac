"""BlackBox: every answer checked (shapes, labels, probabilities), and
logits told from probabilities as ModelLogits does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import BlackBox

X = np.random.default_rng(0).uniform(size=(6, 4)).astype("float32")


def answers(fn, num_classes, output="probabilities"):
    """The answers of a fresh box to X, eagerly and in a graph."""
    eager = BlackBox(fn, num_classes, output)(X)
    graph = tf.function(BlackBox(fn, num_classes, output))(X)
    return np.asarray(eager), np.asarray(graph)


def refused(fn, num_classes, output, match):
    """Both paths refuse, naming `fn` and `match`."""
    with pytest.raises(ValueError, match=match):
        BlackBox(fn, num_classes, output)(X)
    with pytest.raises(tf.errors.OpError, match=match):
        tf.function(BlackBox(fn, num_classes, output))(X)


def logits_model(activation=None):
    init = keras.initializers.GlorotUniform(seed=0)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, activation, kernel_initializer=init),
        ]
    )


class Subclassed(keras.Model):
    """Logits from a model whose structure tells nothing."""

    def __init__(self):
        super().__init__()
        self.inner = logits_model()

    def call(self, x, training=False):
        return self.inner(x)


@pytest.mark.parametrize("label", [5, 3, -1, 1.5])
def test_labels_that_are_not_classes_are_refused(label):
    def fn(x):
        ids = np.zeros(len(x))
        ids[0] = label
        return ids

    refused(fn, 3, "labels", "argument `fn`")


def test_one_hot_answers_must_be_one_hot():
    refused(lambda x: np.ones((len(x), 3)), 3, "labels", "one-hot rows")
    eager, graph = answers(lambda x: np.eye(3)[np.arange(len(x)) % 3], 3)
    np.testing.assert_array_equal(eager, np.eye(3)[np.arange(6) % 3])
    np.testing.assert_array_equal(graph, eager)


def test_labels_as_ids_bools_and_columns_become_one_hot_rows():
    ids = np.array([2, 0, 1, 1, 0, 2])
    for fn in (lambda x: ids, lambda x: ids[:, None]):
        for result in answers(fn, 3, "labels"):
            np.testing.assert_array_equal(result, np.eye(3)[ids])
    decisions = X[:, 0] > 0.5
    for result in answers(lambda x: x[:, 0] > 0.5, 2, "labels"):
        np.testing.assert_array_equal(result, np.eye(2)[decisions.astype(int)])


@pytest.mark.parametrize(
    "fn, match",
    [
        # Four columns for three classes: no reshape into mixed rows.
        (lambda x: np.full((len(x), 4), 0.25), r"\(6, 4\) for 6 queries"),
        # Eight rows for six queries.
        (lambda x: np.full((8, 3), 1 / 3), r"\(8, 3\) for 6 queries"),
        (lambda x: np.full((len(x),), 1 / 3), r"\(6,\) for 6 queries"),
    ],
)
def test_answers_of_another_shape_are_refused(fn, match):
    refused(fn, 3, "probabilities", match)


def test_keras_model_answers_of_another_width_are_refused_when_traced():
    box = BlackBox(logits_model("softmax"), 4)
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        tf.function(box)(X)
    with pytest.raises(ValueError, match=r"\(6, 4\)"):
        box(X)


def test_a_logits_model_is_answered_through_a_softmax():
    model = logits_model()
    box = BlackBox(model, 3)
    assert box.from_logits
    expected = np.asarray(keras.ops.softmax(model(X)))
    for result in answers(model, 3):
        np.testing.assert_allclose(result, expected, rtol=1e-6)
    # A softmax model is read as it is.
    softmax = logits_model("softmax")
    assert not BlackBox(softmax, 3).from_logits
    for result in answers(softmax, 3):
        np.testing.assert_allclose(result, softmax(X), rtol=1e-6)


def test_logits_from_an_unknown_fn_are_refused_or_declared():
    model = Subclassed()
    refused(model, 3, "probabilities", "`output` to logits")
    refused(
        lambda x: x[:, :3] * 4 - 2, 3, "probabilities", "`output` to logits"
    )
    expected = np.asarray(keras.ops.softmax(model(X)))
    for result in answers(model, 3, "logits"):
        np.testing.assert_allclose(result, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="`output`"):
        BlackBox(logits_model("softmax"), 3, "logits")


def test_probabilities_rounded_to_two_decimals_pass():
    probabilities = np.asarray(keras.ops.softmax(X[:, :3] * 3))

    def rounded(x):
        return np.round(probabilities[: len(x)], 2)

    eager, graph = answers(rounded, 3)
    np.testing.assert_array_equal(eager, rounded(X).astype("float32"))
    np.testing.assert_array_equal(graph, eager)


def test_every_query_is_counted_once():
    box = BlackBox(logits_model(), 3)
    box(X)
    tf.function(box)(X)
    box.predict(np.concatenate([X, X]), batch_size=4)
    assert box.query_count == 24
