"""The registry of objective names: `keras_adv.training.get`.

The one place that maps names to objectives; `AdversarialTraining`,
`AdversarialModel`, the recipes and the CLI read it.
"""

import keras

from keras_adv import _validation
from keras_adv.training._fast import NFGSM
from keras_adv.training._fast import Free
from keras_adv.training._fast import GradAlign
from keras_adv.training._madry import FGSMRS
from keras_adv.training._madry import Madry
from keras_adv.training._max_loss import MaxLoss
from keras_adv.training._objective import Objective
from keras_adv.training._regularised import TRADES
from keras_adv.training._regularised import VAT

_SHORTHANDS = {
    "adversarial": Madry,
    "madry": Madry,
    "pgd": Madry,
    "fgsm_rs": FGSMRS,
    "fgsm-rs": FGSMRS,  # alias
    "trades": TRADES,
    "vat": VAT,
    "n_fgsm": NFGSM,
    "grad_align": GradAlign,
    "free": Free,
    "max_loss": MaxLoss,
}


def get(objective, attack=None, **kwargs):
    """Returns an `Objective` from an instance, a config or a shorthand.

    Args:
        objective: An `Objective` (returned as is), a serialised objective
            dict, or a shorthand: `"adversarial"` (= `"madry"`), `"fgsm_rs"`
            (alias `"fgsm-rs"`), `"trades"`, `"vat"`, `"n_fgsm"`,
            `"grad_align"`, `"free"`.
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
    shorthands = _SHORTHANDS
    key = _validation.check_choice("objective", objective, set(shorthands))
    if attack is None:
        raise TypeError(
            _validation.invalid(
                "attack",
                f"a keras_adv.attacks.Attack for objective={objective!r}",
                attack,
            )
        )
    cls = shorthands[key]
    try:
        return cls(attack, **kwargs)
    except TypeError as error:
        raise TypeError(
            f"Invalid argument for objective={objective!r}: {error}"
        ) from None
