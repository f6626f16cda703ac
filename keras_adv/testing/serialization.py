"""Serialisation checks: config round trips and `.keras` saving.

Plain functions, so plain pytest functions call them directly;
`TestCase.run_serialization_test` and `TestCase.run_model_saving_test`
(the `SerializationChecks` mixin) call the same functions. Each check fails
with an `AssertionError` naming the class and the property.
"""

import json
import os
import tempfile
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import keras
import numpy as np

from keras_adv._types import Array
from keras_adv._types import Config

if TYPE_CHECKING:
    from typing import Protocol

    from typing_extensions import Self

    class _Configurable(Protocol):
        """What the checks need: a config and a class built from one."""

        def get_config(self) -> Config: ...

        @classmethod
        def from_config(cls, config: Config) -> Self: ...


_T = TypeVar("_T", bound="_Configurable")


def sorted_json(config: Config) -> str:
    """`config` as JSON with sorted keys (the form configs are compared in)."""
    return json.dumps(config, sort_keys=True)


def assert_config_round_trip(obj: _T) -> _T:
    """Asserts `serialize -> deserialize` rebuilds an equal config.

    Goes through `keras.saving.serialize_keras_object`, so the class must be
    registered (done when `keras_adv` is imported). Returns the new object.
    """
    serialized = keras.saving.serialize_keras_object(obj)
    restored = keras.saving.deserialize_keras_object(serialized)
    if type(restored) is not type(obj):
        raise AssertionError(f"{type(restored)} is not {type(obj)}")
    if restored.get_config() != obj.get_config():
        raise AssertionError(
            f"config changed:\n{obj.get_config()}\n{restored.get_config()}"
        )
    return restored


def _check_same(name: str, what: str, expected_json: str, actual: Any) -> None:
    actual_json = sorted_json(actual.get_config())
    if actual_json != expected_json:
        raise AssertionError(
            f"{name}: the config changed through {what}:\n"
            f"before: {expected_json}\nafter:  {actual_json}"
        )


def _check_class(name: str, what: str, cls: type, actual: object) -> None:
    if type(actual) is not cls:
        raise AssertionError(
            f"{name}: {what} gave a {type(actual).__name__}, not a {name}"
        )


def run_serialization_test(instance: _T, registered: bool = True) -> _T:
    """Checks that `get_config` survives JSON and rebuilds the object.

    `config -> json.dumps -> json.loads -> cls.from_config` must give
    an object of the same class with the same config (compared as
    sorted JSON); with `registered`, so must
    `keras.saving.serialize_keras_object` through JSON and
    `deserialize_keras_object(..., safe_mode=True)`.

    Args:
        instance: An object with `get_config` and a `from_config`
            class method.
        registered: Bool, also check the Keras registry round trip
            (what `.keras` loading uses). Defaults to `True`.

    Returns:
        The object rebuilt from the JSON config.

    Example:

    >>> from keras_adv.attacks import PGD
    >>> from keras_adv.testing import run_serialization_test
    >>> run_serialization_test(PGD(eps=0.1, steps=3)).steps
    3
    """
    cls = type(instance)
    name = cls.__name__
    config = instance.get_config()
    try:
        config_json = sorted_json(config)
    except (TypeError, ValueError) as error:
        raise AssertionError(
            f"{name}.get_config() is not JSON-serialisable: {error}. "
            f"Config: {config!r}"
        ) from None
    revived = cls.from_config(json.loads(config_json))
    _check_class(name, "from_config", cls, revived)
    _check_same(name, "from_config", config_json, revived)
    if not registered:
        return revived
    serialized = keras.saving.serialize_keras_object(instance)
    try:
        serialized_json = sorted_json(serialized)
    except (TypeError, ValueError) as error:
        raise AssertionError(
            f"{name}: serialize_keras_object output is not "
            f"JSON-serialisable: {error}"
        ) from None
    what = "deserialize_keras_object (is the class registered?)"
    try:
        restored = keras.saving.deserialize_keras_object(
            json.loads(serialized_json), safe_mode=True
        )
    except (TypeError, ValueError) as error:
        raise AssertionError(f"{name}: {what} failed: {error}") from None
    _check_class(name, what, cls, restored)
    _check_same(name, "the Keras registry", config_json, restored)
    return revived


def run_model_saving_test(
    model: keras.Model, x: Array, atol: float = 1e-6
) -> keras.Model:
    """Saves `model` as `.keras`, loads it with `safe_mode=True`.

    The loaded model must have the same class, the same weights and
    the same outputs `model(x, training=False)`.

    Args:
        model: A built Keras model.
        x: A batch of inputs for `model`.
        atol: Float, tolerance on the outputs. Defaults to `1e-6`.

    Returns:
        The loaded model.

    Example:

    >>> import numpy as np
    >>> from keras_adv.testing import linear_classifier
    >>> from keras_adv.testing import run_model_saving_test
    >>> model = linear_classifier(np.eye(3, 2))
    >>> loaded = run_model_saving_test(model, np.ones((4, 3), "float32"))
    >>> type(loaded).__name__
    'Sequential'
    """
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
    name = type(model).__name__
    _check_class(name, ".keras save and safe_mode load", type(model), loaded)
    weights, loaded_weights = model.get_weights(), loaded.get_weights()
    if len(weights) != len(loaded_weights):
        raise AssertionError(
            f"{name}: {len(loaded_weights)} weights after loading, "
            f"{len(weights)} before"
        )
    for i, (a, b) in enumerate(zip(weights, loaded_weights)):
        np.testing.assert_array_equal(
            b, a, err_msg=f"{name}: weight {i} after loading"
        )
    actual = keras.ops.convert_to_numpy(loaded(x, training=False))
    np.testing.assert_allclose(
        actual,
        expected,
        atol=atol,
        rtol=0,
        err_msg=f"{name}: outputs after .keras save and safe_mode load",
    )
    return loaded


class SerializationChecks:
    """Mixin with the serialisation checks as `TestCase` methods."""

    def run_serialization_test(
        self, instance: _T, registered: bool = True
    ) -> _T:
        """Checks that `get_config` survives JSON and rebuilds the object.

        The same as `keras_adv.testing.run_serialization_test`.

        Args:
            instance: An object with `get_config` and a `from_config`
                class method.
            registered: Bool, also check the Keras registry round trip
                (what `.keras` loading uses). Defaults to `True`.

        Returns:
            The object rebuilt from the JSON config.
        """
        return run_serialization_test(instance, registered=registered)

    def run_model_saving_test(
        self, model: keras.Model, x: Array, atol: float = 1e-6
    ) -> keras.Model:
        """Saves `model` as `.keras`, loads it with `safe_mode=True`.

        The same as `keras_adv.testing.run_model_saving_test`: same class,
        same weights, same outputs `model(x, training=False)`.

        Args:
            model: A built Keras model.
            x: A batch of inputs for `model`.
            atol: Float, tolerance on the outputs. Defaults to `1e-6`.

        Returns:
            The loaded model.
        """
        return run_model_saving_test(model, x, atol=atol)
