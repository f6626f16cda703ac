"""The trained networks an attack holds outside its config.

An attack's config describes its networks, not their weights: a
`GeneratorAttack`'s generator, a `LatentPGD`'s CVAE (through its
`LearnedPerturbationSet`) are rebuilt from their configs with fresh
weights. `AdversarialModel` saves their variables with its own
(`save_own_variables`), so a model reloaded from `.keras` (or from
`save_weights` / `BackupAndRestore`) attacks with the trained networks.
The networks are found by walking the objective's keras_adv objects
(objective, attacks, threat models), never through a Keras layer and
never through dict caches, so any attack that keeps a network in an
attribute is covered without declaring it.
"""

import warnings
from collections.abc import Mapping
from collections.abc import MutableMapping
from collections.abc import Sequence
from typing import Any

import keras

from keras_adv.training import Objective

#: The prefix of the attack's variables among the model's own.
KEY = "attack_"


def _children(value: object) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if type(value).__module__.startswith("keras_adv.") and hasattr(
        value, "__dict__"
    ):
        return list(vars(value).values())
    return []  # dicts (caches), weak references, tensors, callables


def attack_networks(objective: Objective) -> list[keras.layers.Layer]:
    """The Keras layers and models reachable from `objective`, in order."""
    networks, seen, stack = [], set(), [objective]
    while stack:
        value = stack.pop(0)
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, keras.layers.Layer):
            networks.append(value)
        else:
            stack.extend(_children(value))
    return networks


def attack_variables(
    objective: Objective, own: Sequence[keras.Variable]
) -> list[keras.Variable]:
    """The variables of the attack's networks not among `own`, in order.

    Args:
        objective: The model's `Objective`.
        own: The variables the model saves anyway (its base model's).
    """
    skip = {id(v) for v in own}
    variables = []
    for network in attack_networks(objective):
        for variable in network.weights:
            if id(variable) not in skip:
                skip.add(id(variable))
                variables.append(variable)
    return variables


def save(
    store: MutableMapping[str, Any], variables: Sequence[keras.Variable]
) -> None:
    """Writes `variables` into a Keras weights `store`."""
    for i, variable in enumerate(variables):
        store[f"{KEY}{i}"] = variable


def load(
    store: Mapping[str, Any], variables: Sequence[keras.Variable], owner: str
) -> dict[str, Any]:
    """Reads the attack's variables from `store`; returns the other keys.

    Raises:
        ValueError: when the file holds attack variables that do not
            match the attack's networks (their number or shapes).
    """
    keys = list(store.keys())
    saved = sorted(
        (k for k in keys if k.startswith(KEY)),
        key=lambda k: int(k[len(KEY) :]),
    )
    if not saved and variables:
        warnings.warn(
            f"{owner} was saved without the weights of its attack's "
            f"networks ({len(variables)} variables, e.g. a generator's or "
            "a CVAE's, not saved by earlier versions): they are "
            "freshly initialised. Set them from the trained networks.",
            stacklevel=3,
        )
    elif saved:
        values = [store[k] for k in saved]
        shapes = [tuple(v.shape) for v in values]
        expected = [tuple(v.shape) for v in variables]
        if shapes != expected:
            raise ValueError(
                f"The saved weights of {owner}'s attack networks do not "
                f"match its attack: {len(shapes)} saved variables of shapes "
                f"{shapes[:4]}..., {len(expected)} expected of shapes "
                f"{expected[:4]}...."
            )
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
    return {k: store[k] for k in keys if not k.startswith(KEY)}
