"""Helpers for testing code built on keras_adv.

`TestCase` holds the checklists (attacks, serialisation, `.keras` saving,
callbacks); `run_serialization_test` and `run_model_saving_test` are its
serialisation checks as plain functions; the rest are tiny deterministic
models and a config round trip.
"""

from keras_adv.models import mnist_cnn
from keras_adv.models import small_cnn
from keras_adv.testing.cvae import shift_cvae
from keras_adv.testing.models import linear_classifier
from keras_adv.testing.serialization import assert_config_round_trip
from keras_adv.testing.serialization import run_model_saving_test
from keras_adv.testing.serialization import run_serialization_test
from keras_adv.testing.test_case import TestCase

__all__ = [
    "TestCase",
    "assert_config_round_trip",
    "linear_classifier",
    "mnist_cnn",
    "run_model_saving_test",
    "run_serialization_test",
    "shift_cvae",
    "small_cnn",
]
