"""The serialisation checks as plain functions, the same as `TestCase`'s.

Each broken object below violates one property; the check must raise an
`AssertionError` naming it (the `TestCase` methods are checked in
test_test_case.py).
"""

import keras
import numpy as np
import pytest

from keras_adv.testing import TestCase
from keras_adv.testing import run_model_saving_test
from keras_adv.testing import run_serialization_test


class Plain:
    def __init__(self, value=1):
        self.value = value

    def get_config(self):
        return {"value": self.value}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class ForgetsValue(Plain):
    @classmethod
    def from_config(cls, config):
        return cls()


class BuildsAPlain(Plain):
    @classmethod
    def from_config(cls, config):
        return Plain(**config)


class NotJSON(Plain):
    def get_config(self):
        return {"value": np.float32(self.value)}


def test_serialization_test_names_the_broken_property():
    revived = run_serialization_test(Plain(3), registered=False)
    assert type(revived) is Plain and revived.value == 3
    with pytest.raises(AssertionError, match="config changed"):
        run_serialization_test(ForgetsValue(3), registered=False)
    with pytest.raises(AssertionError, match="gave a Plain, not a"):
        run_serialization_test(BuildsAPlain(3), registered=False)
    with pytest.raises(AssertionError, match="not JSON-serialisable"):
        run_serialization_test(NotJSON(3), registered=False)
    with pytest.raises(AssertionError, match="registered"):
        run_serialization_test(Plain(3))


@keras.saving.register_keras_serializable(package="keras_adv_serialization")
class Offset(keras.layers.Layer):
    """Adds `offset`, which `get_config` forgets."""

    def __init__(self, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def call(self, x):
        return x + self.offset

    def get_config(self):
        config = super().get_config()
        config.pop("offset", None)
        return config


def test_model_saving_test_compares_outputs():
    x = np.ones((2, 3), "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    loaded = run_model_saving_test(model, x)
    assert type(loaded) is keras.Sequential
    np.testing.assert_array_equal(loaded(x), model(x))
    # Same class, same (no) weights, other outputs: only the outputs tell.
    broken = keras.Sequential([keras.Input((3,)), Offset(1.0)])
    with pytest.raises(AssertionError, match="outputs after .keras save"):
        run_model_saving_test(broken, x)
    with pytest.raises(AssertionError, match="outputs after .keras save"):
        TestCase().run_model_saving_test(broken, x)
    run_model_saving_test(broken, x, atol=1.0)
