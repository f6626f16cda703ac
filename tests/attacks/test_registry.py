"""`keras_adv.attacks.get`: one registry of attack names for every door.

The API (`attacks.get`, `evaluate_robustness`, `RobustnessMonitor`) and the
`keras-adv` command read the same table (`keras_adv._names`), so they
accept exactly the same names, spelled the same way.
"""

import argparse

import keras
import pytest

from keras_adv import _names
from keras_adv import attacks
from keras_adv.cli import _values
from keras_adv.evaluation._attack_set import attack_dict

UNKNOWN = ["cw", "deepfool", "pgd-20", "pdg", "fgsm2", "generator"]


@pytest.mark.parametrize("name", sorted(_names.ATTACKS))
def test_every_name_builds_its_attack_in_every_door(name):
    class_name, settings = _names.ATTACKS[name]
    attack = attacks.get(name)
    assert type(attack).__name__ == class_name
    for key, value in settings.items():
        assert getattr(attack, key) == value
    # Evaluation reports it under the name; the command accepts it as is.
    (key,) = attack_dict(name)
    assert key == name
    assert _values.parse_attacks(name) == [name]
    assert _values.parse_attacks(name.upper()) == [name]


@pytest.mark.parametrize("name", UNKNOWN)
def test_unknown_names_are_refused_by_every_door(name):
    with pytest.raises(ValueError, match="`identifier`"):
        attacks.get(name)
    with pytest.raises(ValueError, match="`attacks`"):
        attack_dict(name)
    with pytest.raises(argparse.ArgumentTypeError, match="unknown attack"):
        _values.parse_attacks(name)


def test_names_ignore_case_and_keep_one_spelling():
    assert type(attacks.get("AutoAttack")).__name__ == "AutoAttack"
    assert list(attack_dict(["PGD20", " fgsm "])) == ["pgd20", "fgsm"]
    for name in [*_names.ATTACKS, *_names.ATTACK_ALIASES]:
        assert name == name.lower() and "-" not in name
    for alias, name in _names.ATTACK_ALIASES.items():
        assert type(attacks.get(alias)) is type(attacks.get(name))


def test_the_error_lists_the_names_and_suggests_the_closest():
    with pytest.raises(ValueError) as info:
        attacks.get("autoatack")
    message = str(info.value)
    for name in _names.ATTACKS:
        assert repr(name) in message
    assert "generator:PATH.keras" in message
    assert message.endswith("Did you mean 'autoattack'?")
    with pytest.raises(ValueError, match="Did you mean 'pgd'"):
        attack_dict(["fgsm", "pdg"])
    with pytest.raises(argparse.ArgumentTypeError, match="did you mean 'apgd"):
        _values.parse_attacks("fgsm,apdg")
    with pytest.raises(ValueError) as info:
        attacks.get("deepfool")
    assert "Did you mean" not in str(info.value)


def test_overrides_replace_the_settings_of_a_name():
    attack = attacks.get("pgd", eps=0.1, steps=3, norm="l2", seed=7)
    assert (attack.eps, attack.steps, attack.norm, attack.seed) == (
        0.1,
        3,
        "l2",
        7,
    )
    assert attacks.get("pgd").steps == 10  # the registry is not changed
    with pytest.raises(TypeError, match="attack 'fgsm'.*restarts"):
        attacks.get("fgsm", restarts=2)


def test_instances_and_configs():
    pgd = attacks.PGD(eps=0.2, steps=4, seed=1)
    assert attacks.get(pgd) is pgd
    config = keras.saving.serialize_keras_object(pgd)
    clone = attacks.get(config)
    assert type(clone) is attacks.PGD
    assert clone.get_config() == pgd.get_config()
    with pytest.raises(ValueError, match="overrides"):
        attacks.get(pgd, eps=0.1)
    with pytest.raises(ValueError, match="overrides"):
        attacks.get(config, eps=0.1)
    with pytest.raises(TypeError, match="identifier"):
        attacks.get(3)
    dense = keras.saving.serialize_keras_object(keras.layers.Dense(2))
    with pytest.raises(TypeError, match="config of a keras_adv attack"):
        attacks.get(dense)


def test_generator_names(tmp_path):
    generator = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4, activation="tanh")]
    )
    path = str(tmp_path / "gen.keras")
    generator.save(path)
    attack = attacks.get(f"Generator: {path}", norm="l2")
    assert type(attack) is attacks.GeneratorAttack
    assert attack.norm == "l2"
    assert list(attack_dict([f"generator:{path}"] * 2)) == [
        "generator",
        "generator_2",
    ]
    assert _values.parse_attacks(f"fgsm,generator:{path}") == [
        "fgsm",
        f"generator:{path}",
    ]
