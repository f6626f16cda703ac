"""The registry of objective names: `keras_adv.training.get`.

The one place that maps names to objectives; `AdversarialTraining`,
`AdversarialModel`, the recipes and the CLI read it.
"""

from typing import Any

import keras

from keras_adv import _names
from keras_adv import _validation
from keras_adv._types import Config
from keras_adv.attacks import Attack
from keras_adv.training._fast import NFGSM
from keras_adv.training._fast import Free
from keras_adv.training._fast import GradAlign
from keras_adv.training._madry import FGSMRS
from keras_adv.training._madry import Madry
from keras_adv.training._max_loss import MaxLoss
from keras_adv.training._objective import Objective
from keras_adv.training._regularised import TRADES
from keras_adv.training._regularised import VAT
from keras_adv.training._verified import CROWNIBP
from keras_adv.training._verified import IBP

#: The classes behind the names of `keras_adv._names.OBJECTIVES`.
_CLASSES = {
    cls.__name__: cls
    for cls in (
        *(Madry, FGSMRS, TRADES, VAT, NFGSM, GradAlign, Free, MaxLoss),
        *(IBP, CROWNIBP),
    )
}


def get(
    objective: Objective | str | Config,
    attack: Attack | None = None,
    **kwargs: Any,
) -> Objective:
    """Returns an `Objective` from an instance, a config or a shorthand.

    Args:
        objective: An `Objective` (returned as is), a serialised objective
            dict, or a name (case-insensitive): `"pgd"` (Madry; aliases
            `"madry"`, `"adversarial"`), `"fgsm_rs"` (alias `"fgsm-rs"`),
            `"trades"`, `"vat"`, `"n_fgsm"` (alias `"n-fgsm"`),
            `"grad_align"`, `"free"`, `"max_loss"`, `"ibp"`, `"crown_ibp"`
            (alias `"crown_ibp"`). The names are those of
            `keras-adv train --method` and `keras_adv.recipes`.
        attack: The attack, for shorthands.
        **kwargs: The objective's other arguments, for shorthands (e.g.
            `beta=6.0` for "trades"); arguments the objective does not take
            raise `TypeError`.

    Example:

    >>> import keras_adv
    >>> keras_adv.training.get(
    ...     "trades", keras_adv.attacks.PGD(eps=0.3), beta=3.0).beta
    3.0
    """
    if isinstance(objective, Objective):
        if attack is not None or kwargs:
            raise ValueError(
                "Pass either an Objective instance or a shorthand with its "
                "arguments, not both. Received: objective="
                f"{objective!r} with attack={attack!r}, {kwargs}"
            )
        return objective
    if isinstance(objective, dict):
        return keras.saving.deserialize_keras_object(objective)
    key = _names.canonical(
        objective, _names.OBJECTIVES, _names.OBJECTIVE_ALIASES
    )
    if key is None:
        raise ValueError(
            _names.unknown(
                "objective",
                "objective",
                objective,
                _names.OBJECTIVES,
                _names.OBJECTIVE_ALIASES,
            )
        )
    if attack is None:
        raise TypeError(
            _validation.invalid(
                "attack",
                f"a keras_adv.attacks.Attack for objective={objective!r}",
                attack,
            )
        )
    cls = _CLASSES[_names.OBJECTIVES[key]]
    try:
        return cls(attack, **kwargs)
    except TypeError as error:
        raise TypeError(
            f"Invalid argument for objective={objective!r}: {error}"
        ) from None
