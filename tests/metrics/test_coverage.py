"""Tests of `class_coverage`."""

import numpy as np
import pytest

from keras_adv.metrics import class_coverage


def test_class_coverage_counts():
    probs = np.array(
        [[0.7, 0.2, 0.1, 0.0], [0.1, 0.8, 0.1, 0.0], [0.6, 0.3, 0.1, 0.0]]
    )
    stats = class_coverage(probs)
    assert stats["coverage"] == 0.5
    assert stats["min_class_fraction"] == 0.0
    np.testing.assert_allclose(stats["class_fractions"], [2 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(stats["mean_confidence"], 0.7)


def test_class_coverage_refuses_logits():
    with pytest.raises(ValueError, match="softmax"):
        class_coverage(np.array([[3.0, -1.0], [0.5, 2.0]]))
