"""`keras_adv.training.get`: the one registry of objective names."""

import keras
import pytest

from keras_adv import _names
from keras_adv import training
from keras_adv.attacks import PGD


@pytest.mark.parametrize("name", sorted(_names.OBJECTIVES))
def test_every_name_builds_its_class(name):
    objective = training.get(name, PGD(eps=0.1, steps=2))
    assert type(objective).__name__ == _names.OBJECTIVES[name]
    assert type(objective) is getattr(training, _names.OBJECTIVES[name])


@pytest.mark.parametrize("alias", sorted(_names.OBJECTIVE_ALIASES))
def test_aliases_build_the_canonical_class(alias):
    canonical = _names.OBJECTIVE_ALIASES[alias]
    objective = training.get(alias.upper(), PGD(eps=0.1, steps=2))
    assert type(objective).__name__ == _names.OBJECTIVES[canonical]


def test_recipe_methods_are_objective_names():
    for method in _names.RECIPE_METHODS:
        assert method == "clean" or method in _names.OBJECTIVES


def test_unknown_names_suggest_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'trades'") as info:
        training.get("trade", PGD())
    assert "`objective`" in str(info.value)
    with pytest.raises(ValueError, match="objective"):
        training.get(3, PGD())


def test_instances_and_configs():
    objective = training.TRADES(PGD(eps=0.1), beta=2.0)
    assert training.get(objective) is objective
    again = training.get(keras.saving.serialize_keras_object(objective))
    assert type(again) is training.TRADES and again.beta == 2.0
    with pytest.raises(ValueError, match="not both"):
        training.get(objective, PGD())
    with pytest.raises(TypeError, match="attack"):
        training.get("trades")
    with pytest.raises(TypeError, match="beta"):
        training.get("pgd", PGD(), beta=1.0)
