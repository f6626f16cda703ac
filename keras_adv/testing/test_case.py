"""`TestCase`: the checklists every attack, model and callback passes.

One mixin per job, composed here: `attack_checks.AttackChecks` (the attack
checklist), `serialization.SerializationChecks` (config round trips and
`.keras` saving, also plain functions in `serialization`) and
`callback_checks.CallbackChecks` (a callback leaves nothing behind). Each
check fails with an `AssertionError` naming what it checked.
"""

import unittest

from keras_adv.testing._attack_problems import DEFAULT_EPS
from keras_adv.testing._attack_problems import LARGE_EPS
from keras_adv.testing._attack_problems import hadamard_weights
from keras_adv.testing.attack_checks import AttackChecks
from keras_adv.testing.callback_checks import INSTALLED_NAMES
from keras_adv.testing.callback_checks import CallbackChecks
from keras_adv.testing.serialization import SerializationChecks

__all__ = [
    "DEFAULT_EPS",
    "INSTALLED_NAMES",
    "LARGE_EPS",
    "TestCase",
    "hadamard_weights",
]


class TestCase(
    AttackChecks, SerializationChecks, CallbackChecks, unittest.TestCase
):
    """Base test case with the keras_adv checklists.

    A `unittest.TestCase`, so pytest collects subclasses; the `run_*`
    helpers also work on a bare instance (`TestCase().run_attack_test(...)`)
    inside plain pytest functions.

    * `run_attack_test(cls, init_kwargs)`: the attack checklist on tiny
      linear models, for every norm, on both seeding paths.
    * `run_serialization_test(instance)`: JSON round trip of `get_config`.
    * `run_model_saving_test(model, x)`: `.keras` save, `safe_mode` load,
      same outputs.
    * `run_callback_test(callback_factory, model_factory, data)`: a callback
      leaves nothing behind on the model it trained.

    Example:

    ```python
    from keras_adv.attacks import PGD
    from keras_adv.testing import TestCase


    class PGDTest(TestCase):
        def test_checklist(self):
            self.run_attack_test(PGD, {"steps": 5})
    ```
    """
