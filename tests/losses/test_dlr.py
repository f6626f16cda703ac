"""DLR losses: closed forms, and labels that are not classes fail.

`keras.ops.one_hot` maps a label outside `[0, classes)` to a row of
zeros, so without a check the loss of such a sample would be a number;
the cross-entropy's kernel refuses it, and so must the DLR losses, also
inside a traced graph.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.losses import dlr_loss
from keras_adv.losses import targeted_dlr_loss

LOGITS = np.array(
    [[3.0, 1.0, 0.0, -2.0], [0.5, 2.0, 1.0, 0.0], [0.0, 0.0, 4.0, 1.0]],
    "float32",
)
LABELS = np.array([0, 1, 2])


def test_closed_forms():
    # -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3), per sample.
    expected = [-(3 - 1) / (3 - 0), -(2 - 1) / (2 - 0.5), -(4 - 1) / (4 - 0)]
    np.testing.assert_allclose(dlr_loss(LABELS, LOGITS), expected, rtol=1e-6)
    # -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2).
    targets = np.array([1, 0, 3])
    expected = [
        -(3 - 1) / (3 - (0 - 2) / 2),
        -(2 - 0.5) / (2 - (0.5 + 0) / 2),
        -(4 - 1) / (4 - (0 + 0) / 2),
    ]
    np.testing.assert_allclose(
        targeted_dlr_loss(LABELS, LOGITS, targets), expected, rtol=1e-6
    )


BAD = {
    "above": np.array([0, 7, 2]),
    "unlabelled": np.array([0, -1, 2]),
    "fractional": np.array([0.0, 1.5, 2.0], "float32"),
}


@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
def test_labels_outside_the_classes_fail_like_the_cross_entropy(bad):
    labels = BAD[bad]
    if bad != "fractional":
        with pytest.raises(tf.errors.InvalidArgumentError):
            keras.losses.sparse_categorical_crossentropy(
                labels, LOGITS, from_logits=True
            )
    with pytest.raises(tf.errors.InvalidArgumentError, match="`labels`"):
        dlr_loss(labels, LOGITS)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`labels`"):
        targeted_dlr_loss(labels, LOGITS, LABELS)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`targets`"):
        targeted_dlr_loss(LABELS, LOGITS, labels)
    # Inside a traced graph too, with an unknown batch size.
    traced = tf.function(
        dlr_loss,
        input_signature=[
            tf.TensorSpec([None], tf.as_dtype(labels.dtype)),
            tf.TensorSpec([None, 4], tf.float32),
        ],
    )
    np.testing.assert_allclose(
        traced(LABELS.astype(labels.dtype), LOGITS), dlr_loss(LABELS, LOGITS)
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="`labels`"):
        traced(labels, LOGITS)


def test_fit_with_the_loss_refuses_such_labels():
    # `compile(loss=dlr_loss)` runs the loss inside Keras' traced step.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss=dlr_loss)
    x = np.full((3, 4), 0.5, "float32")
    model.fit(x, LABELS, epochs=1, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`labels`"):
        model.fit(x, BAD["above"], epochs=1, verbose=0)
