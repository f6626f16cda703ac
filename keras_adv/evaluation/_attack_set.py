"""Which attacks an evaluation runs, under which names, at which radii.

Names resolve through `keras_adv.attacks.get`, the one registry of attack
names, so `evaluate_robustness`, `RobustnessMonitor` and the `keras-adv`
command accept the same names.
"""

import json
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from keras import ops

from keras_adv import _names
from keras_adv import _signature
from keras_adv import _validation
from keras_adv import attacks as attacks_module
from keras_adv._types import Config
from keras_adv._types import ValueRange
from keras_adv.attacks import Attack


def default_attacks() -> dict[str, Attack]:
    """FGSM and PGD-10 (L-inf, value range [0, 1], their default eps)."""
    return {name: attacks_module.get(name) for name in ("fgsm", "pgd")}


def _by_name(name: str) -> tuple[str, Attack]:
    """`(report name, attack)` of a registered name or `generator:PATH`."""
    if _names.generator_path(name) is not None:
        return _names.GENERATOR, attacks_module.get(name)
    key = _names.canonical(name, _names.ATTACKS, _names.ATTACK_ALIASES)
    if key is None:
        raise ValueError(
            _names.unknown(
                "attack",
                "attacks",
                name,
                _names.ATTACKS,
                _names.ATTACK_ALIASES,
                extra=" or 'generator:PATH.keras'",
            )
        )
    return key, attacks_module.get(key)


def attack_dict(
    attacks: Attack | str | Sequence[Attack | str] | dict[str, Attack] | None,
) -> dict[str, Attack]:
    """Normalises `attacks` to an ordered dict `name -> Attack`.

    Accepts None (the defaults), one `Attack`, a name of
    `keras_adv.attacks.get` (`"autoattack"`, `"apgd"`, ...; reported under
    its canonical spelling, `generator:PATH` as `generator`), a list/tuple
    of attacks or names (attacks named after their class, lower case, with
    `_2`, `_3`... for repeats) or a dict of names to attacks. Targeted
    attacks are refused.
    """
    if attacks is None:
        return default_attacks()
    if isinstance(attacks, str | Attack):
        attacks = [attacks]
    if isinstance(attacks, dict):
        items: list[tuple[str, Attack]] = list(attacks.items())
    elif isinstance(attacks, list | tuple):
        items = []
        counts: dict[str, int] = {}
        for attack in attacks:
            if isinstance(attack, str):
                base, attack = _by_name(attack)
            else:
                base = type(attack).__name__.lower()
            counts[base] = counts.get(base, 0) + 1
            name = base if counts[base] == 1 else f"{base}_{counts[base]}"
            items.append((name, attack))
    else:
        raise TypeError(
            _validation.invalid(
                "attacks", "an Attack, a list of attacks or a dict", attacks
            )
        )
    if not items:
        raise ValueError(
            _validation.invalid("attacks", "at least one attack", attacks)
        )
    for name, attack in items:
        _check_entry(name, attack)
    return dict(items)


def _check_entry(name: object, attack: object) -> None:
    if not isinstance(attack, Attack):
        raise TypeError(
            _validation.invalid(
                "attacks", "keras_adv.attacks.Attack objects", attack
            )
        )
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            _validation.invalid(
                "attacks",
                "names that are valid identifiers (letters, digits, _)",
                name,
            )
        )
    if attack.targeted:
        raise ValueError(
            "Robustness is evaluated with untargeted attacks on the true "
            f"labels. Received: attack {name!r} with targeted=True."
        )


#: The default radii of `evaluate_robustness`, in units of the width of the
#: attacks' value range (0.3 is the MNIST L-inf standard on [0, 1]).
DEFAULT_EPSILONS = (0.0, 0.1, 0.2, 0.3)
# Radii below this share of the value range's width are almost surely in
# the wrong units (the smallest usual radius, 1/255, is 0.0039 of it).
_TINY_SHARE = 0.002


def default_epsilons(value_range: ValueRange) -> list[float]:
    """`DEFAULT_EPSILONS` in the units of `value_range`."""
    low, high = value_range
    return [e * (high - low) for e in DEFAULT_EPSILONS]


def warn_if_tiny(epsilons: Sequence[float], value_range: ValueRange) -> None:
    """Warns when every radius is tiny against the value range's width.

    The symptom of radii in the wrong units: `(0.1, 0.2, 0.3)` on inputs
    in `[0, 255]` evaluates robustness to imperceptible changes.
    """
    low, high = value_range
    width = high - low
    largest = max(epsilons)
    if 0.0 < largest < _TINY_SHARE * width:
        radii = ", ".join(f"{e:g}" for e in epsilons)
        warnings.warn(
            f"The epsilons ({radii}) are tiny "
            f"for inputs in the attacks' value range ({low:g}, {high:g}): "
            f"the largest is {100 * largest / width:.2g}% of its width, so "
            "the report would measure robustness to imperceptible changes. "
            "Pass epsilons in the model's input units, e.g. epsilons=(0, "
            f"{8 * width / 255:g}, {16 * width / 255:g}) (8/255 and "
            "16/255 of the range).",
            UserWarning,
            stacklevel=3,
        )


def check_epsilons(epsilons: Any) -> list[float]:
    """Returns the radii as an ascending list of unique floats."""
    if isinstance(epsilons, int | float) and not isinstance(epsilons, bool):
        epsilons = [epsilons]
    try:
        values = [
            _validation.check_number("epsilons", e, minimum=0.0)
            for e in epsilons
        ]
    except TypeError:
        raise ValueError(
            _validation.invalid("epsilons", "a list of numbers >= 0", epsilons)
        ) from None
    if not values:
        raise ValueError(
            _validation.invalid("epsilons", "at least one radius", epsilons)
        )
    return sorted(set(values))


def attack_steps(attack: Attack) -> int | None:
    """The attack's `steps` as an int, or None if it does not count steps."""
    steps = getattr(attack, "steps", None)
    return None if steps is None else int(steps)


def attack_label(
    name: str, class_name: str | None = None, steps: int | None = None
) -> str:
    """The name of an attack in terminal tables and logs, with its steps.

    `pgd-20` rather than `pgd` for a 20-step PGD (the name `pgd20` of the
    registry too); single-step FGSM and attacks without steps (AutoAttack,
    Square) keep their name.

    Args:
        name: The attack's name in the report or the monitor.
        class_name: Optional, the attack's class name.
        steps: Optional int, its steps (`attack_steps`).
    """
    if steps is None or class_name == "FGSM":
        return name
    suffix = str(steps)
    if name in _names.ATTACKS and name.endswith(suffix) and name != suffix:
        name = name[: -len(suffix)].rstrip("_-")
    return f"{name}-{steps}"


def scalar_eps(name: str, attack: Attack) -> float:
    """The attack's current eps as a float (variables are read)."""
    eps = np.asarray(ops.convert_to_numpy(attack.eps), "float32")
    if eps.ndim != 0:
        raise ValueError(
            _validation.invalid(
                "attacks",
                f"attacks with a scalar eps (attack {name!r})",
                eps.shape,
            )
        )
    return float(eps)


def attack_config(attack: Attack) -> Config:
    """The attack's config as JSON-ready values, for reports and logs.

    Its `get_config()` with eps read (a variable or tensor becomes a
    number or a list). An attack that cannot be serialised (a lambda loss)
    still gets a config: such callables appear as placeholders, as in its
    graph signature.
    """
    try:
        config = attack.get_config()
    except ValueError:
        # Unsaveable callables enter by identity (see keras_adv._signature).
        _, text, _ = _signature.graph_signature(attack, exclude=("eps",))
        config = {"eps": attack.eps, **json.loads(text)}
    eps = config.get("eps")
    if eps is not None and not isinstance(eps, int | float):
        config["eps"] = np.asarray(ops.convert_to_numpy(eps)).tolist()
    return config
