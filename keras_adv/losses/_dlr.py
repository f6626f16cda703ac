"""Difference-of-logits-ratio (DLR) losses of Croce and Hein (2020).

The DLR loss is a margin divided by the spread of the largest logits, so it
is invariant to shifting and to positive rescaling of the logits: a model
cannot hide behind large or saturated logits (gradient masking by logit
scale), which fools cross-entropy-based attacks.
"""

import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.losses._margin import register_attack_loss

_DENOMINATOR_EPS = 1e-12


def _sorted_logits(logits: TensorLike, needed: int, name: str) -> list[Tensor]:
    """The `needed` largest logits per sample, largest first.

    Repeated masked maxima rather than `top_k`: the gradient is then
    elementwise (no scatter), which XLA also compiles for batches of
    dynamic size. Ties are kept (one entry is masked per round).
    """
    classes = logits.shape[-1]
    if classes is not None and classes < needed:
        raise ValueError(
            f"`{name}` needs logits with at least {needed} classes (it "
            f"divides by the gap between the largest and the "
            f"{_ordinal(needed)}-largest logit). Received: logits of shape "
            f"{tuple(logits.shape)}. Use loss='ce' or loss='margin' for "
            f"models with fewer classes."
        )
    largest, remaining = [], logits
    for _ in range(needed):
        largest.append(ops.max(remaining, axis=-1))
        top = ops.one_hot(ops.argmax(remaining, axis=-1), classes) > 0
        remaining = ops.where(top, float("-inf"), remaining)
    return largest


def _ordinal(n: int) -> str:
    return {3: "third", 4: "fourth"}.get(n, f"{n}th")


def _checked(logits: TensorLike, **labels: TensorLike) -> list[Tensor]:
    """The label tensors, after in-graph checks that they are classes.

    `one_hot` maps a label outside `[0, classes)` to a row of zeros: the
    loss would be a number for a sample without a class. The check is one
    min and one max per label tensor (cheap next to the forward pass that
    made the logits), and raises like the cross-entropy's kernel does.
    """
    classes = logits.shape[-1]
    if classes is None:
        classes = ops.shape(logits)[-1]
    checks = []
    for name, value in labels.items():
        checks += _validation.label_assertions(value, classes, name=name)
    with tf.control_dependencies(checks):
        return [tf.identity(value) for value in labels.values()]


def _logit_of(logits: TensorLike, labels: TensorLike) -> Tensor:
    one_hot = ops.one_hot(ops.cast(labels, "int32"), logits.shape[-1])
    return ops.sum(logits * one_hot, axis=-1)


def dlr_loss(labels: TensorLike, logits: TensorLike) -> Tensor:
    """Per-sample DLR loss `-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)`.

    `z_pi1 >= z_pi2 >= z_pi3` are the largest logits of the sample. The
    loss is positive exactly when the sample is misclassified away from
    `y`; an untargeted attack maximises it. A `1e-12` in the denominator
    keeps it finite when the three largest logits tie. Registered as the
    attack loss `"dlr"`.

    Args:
        labels: Int tensor of shape `(batch,)`, the true classes.
        logits: Float tensor of shape `(batch, classes)` with
            `classes >= 3`.

    Returns:
        Float32 tensor of shape `(batch,)`.

    Raises:
        ValueError: if the logits have fewer than 3 classes.
        InvalidArgumentError: for labels that are not classes (outside
            `[0, classes)` or fractional), as the cross-entropy.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import dlr_loss
    >>> logits = np.array([[3.0, 1.0, 0.0, -2.0]])
    >>> np.asarray(dlr_loss(np.array([0]), logits)).round(4)  # -(3-1)/(3-0)
    array([-0.6667], dtype=float32)

    Reference:
        Croce and Hein, "Reliable evaluation of adversarial robustness with
        an ensemble of diverse parameter-free attacks", ICML 2020,
        [arXiv:2003.01690](https://arxiv.org/abs/2003.01690).
    """
    logits = ops.cast(logits, "float32")
    top = _sorted_logits(logits, 3, "dlr_loss")
    (labels,) = _checked(logits, labels=labels)
    true_logit = _logit_of(logits, labels)
    is_label = ops.one_hot(ops.cast(labels, "int32"), logits.shape[-1]) > 0
    other = ops.max(ops.where(is_label, float("-inf"), logits), axis=-1)
    spread = top[0] - top[2] + _DENOMINATOR_EPS
    return -(true_logit - other) / spread


def targeted_dlr_loss(
    labels: TensorLike, logits: TensorLike, targets: TensorLike
) -> Tensor:
    """Per-sample targeted DLR loss of APGDT.

    `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`, with `y` the true
    class, `t` the target and `z_pi1 >= ... >= z_pi4` the four largest
    logits. An attack maximises it: it raises the target's logit above the
    true one. The denominator, unlike the untargeted one, does not vanish
    when the target reaches the top two logits. A `1e-12` keeps it finite.

    Args:
        labels: Int tensor of shape `(batch,)`, the true classes.
        logits: Float tensor of shape `(batch, classes)` with
            `classes >= 4`.
        targets: Int tensor of shape `(batch,)`, the target classes.

    Returns:
        Float32 tensor of shape `(batch,)`.

    Raises:
        ValueError: if the logits have fewer than 4 classes.
        InvalidArgumentError: for labels or targets that are not classes
            (outside `[0, classes)` or fractional).

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import targeted_dlr_loss
    >>> logits = np.array([[4.0, 3.0, 1.0, 0.0, -1.0]])
    >>> loss = targeted_dlr_loss(np.array([0]), logits, np.array([2]))
    >>> np.asarray(loss).round(4)  # -(4 - 1) / (4 - (1 + 0) / 2)
    array([-0.8571], dtype=float32)

    Reference:
        Croce and Hein, "Reliable evaluation of adversarial robustness with
        an ensemble of diverse parameter-free attacks", ICML 2020,
        [arXiv:2003.01690](https://arxiv.org/abs/2003.01690).
    """
    logits = ops.cast(logits, "float32")
    top = _sorted_logits(logits, 4, "targeted_dlr_loss")
    labels, targets = _checked(logits, labels=labels, targets=targets)
    gap = _logit_of(logits, labels) - _logit_of(logits, targets)
    spread = top[0] - 0.5 * (top[2] + top[3]) + _DENOMINATOR_EPS
    return -gap / spread


register_attack_loss("dlr", dlr_loss)
