"""Helpers for testing code built on keras_adv.

`TestCase` holds the checklists (attacks, serialisation, `.keras` saving,
callbacks); the rest are tiny deterministic models and round trips.
"""

from keras_adv.testing.cvae import shift_cvae
from keras_adv.testing.models import linear_classifier
from keras_adv.testing.models import mnist_cnn
from keras_adv.testing.models import small_cnn
from keras_adv.testing.serialization import assert_config_round_trip
from keras_adv.testing.serialization import assert_keras_round_trip
from keras_adv.testing.test_case import TestCase

__all__ = [
    "TestCase",
    "assert_config_round_trip",
    "assert_keras_round_trip",
    "linear_classifier",
    "mnist_cnn",
    "shift_cvae",
    "small_cnn",
]
