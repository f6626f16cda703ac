"""Per-sample attack losses on logits: cross-entropy and the C&W margin."""

from keras import ops


def cross_entropy(labels, logits):
    """Per-sample softmax cross-entropy `-log softmax(logits)[label]`.

    Args:
        labels: Int tensor of shape `(batch,)`.
        logits: Float tensor of shape `(batch, classes)`.

    Returns:
        Float tensor of shape `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import cross_entropy
    >>> ce = cross_entropy(np.array([1]), np.array([[0.0, 0.0]]))
    >>> round(float(ce[0]), 4)  # log 2
    0.6931
    """
    return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def margin_loss(labels, logits):
    """Per-sample Carlini-Wagner margin `max_{j != y} z_j - z_y`.

    Positive exactly when the sample is misclassified away from `y`;
    maximising it is the untargeted C&W objective (without the confidence
    clamp), and minimising it with `y` the target is the targeted one.

    Args:
        labels: Int tensor of shape `(batch,)`.
        logits: Float tensor of shape `(batch, classes)`.

    Returns:
        Float tensor of shape `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import margin_loss
    >>> np.asarray(margin_loss(np.array([0]), np.array([[2.0, 3.0, -1.0]])))
    array([1.], dtype=float32)

    Reference:
        Carlini and Wagner, "Towards Evaluating the Robustness of Neural
        Networks", IEEE S&P 2017, arXiv:1608.04644.
    """
    logits = ops.cast(logits, "float32")
    num_classes = logits.shape[-1]
    one_hot = ops.one_hot(ops.cast(labels, "int32"), num_classes)
    true_logit = ops.sum(logits * one_hot, axis=-1)
    other = ops.max(logits - 1e9 * one_hot, axis=-1)
    return other - true_logit
