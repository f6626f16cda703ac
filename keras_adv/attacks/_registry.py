"""`keras_adv.attacks.get`: an attack from an instance, a name or a config.

The names live in `keras_adv._names` (standard library only, so that the
`keras-adv` command checks them before TensorFlow starts); evaluation, the
robustness monitor, the recipes and the command all build their named
attacks here.
"""

from typing import Any

import keras

from keras_adv import _names
from keras_adv import _validation
from keras_adv._types import Config
from keras_adv.attacks._apgd import APGD
from keras_adv.attacks._apgd_targeted import APGDT
from keras_adv.attacks._autoattack import AutoAttack
from keras_adv.attacks._base import Attack
from keras_adv.attacks._fab import FAB
from keras_adv.attacks._fgsm import FGSM
from keras_adv.attacks._generator import GeneratorAttack
from keras_adv.attacks._pgd import BIM
from keras_adv.attacks._pgd import MIM
from keras_adv.attacks._pgd import PGD
from keras_adv.attacks._square import Square

_CLASSES: dict[str, type[Attack]] = {
    cls.__name__: cls
    for cls in (FGSM, PGD, BIM, MIM, APGD, APGDT, FAB, Square, AutoAttack)
}
_GENERATOR_FORM = " or 'generator:PATH.keras' (a saved generator)"


def get(identifier: Attack | str | Config, **overrides: Any) -> Attack:
    """Returns an attack from an instance, a name or a serialised config.

    Like `keras.losses.get` for attacks. A name builds a new attack with
    the name's settings (seeded attacks use `seed=0`, so a name always
    means the same attack); `overrides` replace them:

    | name | attack |
    |---|---|
    | `"fgsm"` | `FGSM()` |
    | `"pgd"` | `PGD(steps=10, seed=0)` |
    | `"pgd20"` | `PGD(steps=20, seed=0)` |
    | `"bim"`, `"mim"` | `BIM()`, `MIM()` |
    | `"apgd"` | `APGD(seed=0)` (APGD-CE, 100 steps) |
    | `"apgd_t"` | `APGDT(seed=0)` (APGD-T, DLR on 9 target classes) |
    | `"fab_t"` | `FAB(seed=0)` (FAB-T, 9 target classes) |
    | `"square"` | `Square(seed=0)` (5,000 queries) |
    | `"autoattack"` | `AutoAttack(seed=0)` (the standard version) |
    | `"generator:PATH.keras"` | `GeneratorAttack(PATH.keras)` |

    Names ignore case; every one has a single snake_case spelling. Attacks
    serialise with `keras.saving.serialize_keras_object` (every keras_adv
    attack is registered for `.keras` loading) and `get` accepts that dict
    back; an attack whose loss is an unregistered callable (a lambda) runs
    everywhere but cannot be serialised.

    Args:
        identifier: An `Attack` (returned as is), a name (see above) or
            the dict of `keras.saving.serialize_keras_object(attack)`.
        **overrides: Constructor arguments replacing the name's settings
            (e.g. `eps=0.1`, `norm="l2"`); only with a name.

    Returns:
        A `keras_adv.attacks.Attack`.

    Raises:
        ValueError: for an unknown name (the message lists the names and
            suggests the closest), or `overrides` with an instance or a
            config.
        TypeError: for another type, a config of something that is not an
            attack, or an argument the attack does not take.

    Example:

    >>> import keras, keras_adv
    >>> attack = keras_adv.attacks.get("pgd", eps=0.1)
    >>> type(attack).__name__, attack.steps, attack.eps
    ('PGD', 10, 0.1)
    >>> config = keras.saving.serialize_keras_object(attack)
    >>> keras_adv.attacks.get(config).steps
    10
    >>> keras_adv.attacks.get("pdg")
    Traceback (most recent call last):
    ...
    ValueError: Invalid value received ... Did you mean 'pgd'?
    """
    if isinstance(identifier, str):
        return _from_name(identifier, overrides)
    if overrides:
        raise ValueError(
            "Pass overrides with an attack name only, not with an Attack "
            f"or a config. Received: identifier={identifier!r} with "
            f"{sorted(overrides)}"
        )
    if isinstance(identifier, Attack):
        return identifier
    if isinstance(identifier, dict):
        attack = keras.saving.deserialize_keras_object(identifier)
        if isinstance(attack, Attack):
            return attack
        raise TypeError(
            _validation.invalid(
                "identifier", "the config of a keras_adv attack", identifier
            )
        )
    raise TypeError(
        _validation.invalid(
            "identifier",
            "an Attack, an attack name or a serialised attack (dict)",
            identifier,
        )
    )


def _from_name(identifier: str, overrides: dict[str, Any]) -> Attack:
    path = _names.generator_path(identifier)
    if path is not None:
        return _build(
            GeneratorAttack, identifier, {"generator": path}, overrides
        )
    name = _names.canonical(identifier, _names.ATTACKS, _names.ATTACK_ALIASES)
    if name is None:
        raise ValueError(
            _names.unknown(
                "attack",
                "identifier",
                identifier,
                _names.ATTACKS,
                _names.ATTACK_ALIASES,
                extra=_GENERATOR_FORM,
            )
        )
    class_name, settings = _names.ATTACKS[name]
    return _build(_CLASSES[class_name], name, settings, overrides)


def _build(
    cls: type[Attack],
    name: str,
    settings: dict[str, Any],
    overrides: dict[str, Any],
) -> Attack:
    try:
        return cls(**{**settings, **overrides})
    except TypeError as error:
        raise TypeError(
            f"Invalid argument for attack {name!r}: {error}"
        ) from None
