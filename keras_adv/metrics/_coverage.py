"""Class coverage of generated samples by a classifier."""

from typing import Any

import numpy as np

from keras_adv import _validation
from keras_adv._types import Array


def class_coverage(
    probabilities: Array, num_classes: int | None = None
) -> dict[str, Any]:
    """Summarises how a classifier labels a set of generated samples.

    A generator that covers the data distribution produces samples of every
    class in about the data's proportions, each recognised confidently.

    Args:
        probabilities: Array `(n, classes)` of class probabilities (rows
            summing to 1; apply a softmax to logits first).
        num_classes: Int, number of classes. Defaults to the width of
            `probabilities`.

    Raises:
        ValueError: for a wrong shape, or rows that are not probabilities
            (e.g. logits).

    Returns:
        Dict of Python floats:
        `coverage`: fraction of classes predicted for at least one sample;
        `min_class_fraction`: share of the samples in the rarest class;
        `mean_confidence`: mean top-class probability;
        and `class_fractions`: list of per-class shares.

    Example:

    >>> import numpy as np
    >>> from keras_adv.metrics import class_coverage
    >>> stats = class_coverage(np.array([[0.9, 0.1], [0.3, 0.7]]))
    >>> stats["coverage"], stats["min_class_fraction"]
    (1.0, 0.5)
    >>> round(stats["mean_confidence"], 6)
    0.8
    """
    probabilities = np.asarray(probabilities, dtype="float64")
    if probabilities.ndim != 2 or probabilities.shape[0] < 1:
        raise ValueError(
            _validation.invalid(
                "probabilities",
                "an array of shape (n >= 1, classes)",
                probabilities.shape,
            )
        )
    rows = probabilities.sum(axis=1)
    if (
        not np.all(np.isfinite(probabilities))
        or probabilities.min() < 0.0
        or np.abs(rows - 1.0).max() > 1e-3
    ):
        raise ValueError(
            _validation.invalid(
                "probabilities",
                "rows of non-negative values summing to 1 (apply a softmax "
                "to logits first)",
                f"rows summing to [{rows.min():g}, {rows.max():g}] with "
                f"minimum {probabilities.min():g}",
            )
        )
    if num_classes is None:
        num_classes = probabilities.shape[1]
    num_classes = _validation.check_int("num_classes", num_classes, minimum=1)
    predicted = np.argmax(probabilities, axis=1)
    counts = np.bincount(predicted, minlength=num_classes)[:num_classes]
    fractions = counts / probabilities.shape[0]
    return {
        "coverage": float(np.mean(counts > 0)),
        "min_class_fraction": float(fractions.min()),
        "mean_confidence": float(np.mean(probabilities.max(axis=1))),
        "class_fractions": [float(f) for f in fractions],
    }
