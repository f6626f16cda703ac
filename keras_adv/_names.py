"""The names of keras_adv's registries (standard library only).

`keras_adv.attacks.get`, `keras_adv.training.get`, the recipes and the
evaluation build objects from these names, and the `keras-adv` command
checks its arguments against them before TensorFlow starts: the command
accepts exactly the names the API accepts. Every name has one canonical
snake_case spelling; the aliases map older spellings to it, and keep
working. Lookups ignore case.
"""

import difflib
from collections.abc import Collection
from collections.abc import Mapping
from typing import Any

#: Attacks by name: `(class name, constructor arguments)`. Seeded attacks
#: use seed 0, so that a name always means the same attack.
ATTACKS: dict[str, tuple[str, dict[str, Any]]] = {
    "fgsm": ("FGSM", {}),
    "pgd": ("PGD", {"steps": 10, "seed": 0}),
    "pgd20": ("PGD", {"steps": 20, "seed": 0}),
    "bim": ("BIM", {}),
    "mim": ("MIM", {}),
    "apgd": ("APGD", {"seed": 0}),
    "apgd_t": ("APGDT", {"seed": 0}),
    "fab_t": ("FAB", {"seed": 0}),
    "square": ("Square", {"seed": 0}),
    "autoattack": ("AutoAttack", {"seed": 0}),
}
# No attack name was ever spelled otherwise: no aliases yet.
ATTACK_ALIASES: dict[str, str] = {}

#: `generator:PATH.keras` names a saved generator (a `GeneratorAttack`).
GENERATOR = "generator"

#: Adversarial-training objectives by name: their class names.
OBJECTIVES: dict[str, str] = {
    "pgd": "Madry",
    "fgsm_rs": "FGSMRS",
    "trades": "TRADES",
    "vat": "VAT",
    "n_fgsm": "NFGSM",
    "grad_align": "GradAlign",
    "free": "Free",
    "max_loss": "MaxLoss",
    "ibp": "IBP",
    "crown_ibp": "CROWNIBP",
}
OBJECTIVE_ALIASES: dict[str, str] = {
    "adversarial": "pgd",
    "madry": "pgd",
    "fgsm-rs": "fgsm_rs",
    "n-fgsm": "n_fgsm",
    "crown-ibp": "crown_ibp",
}

#: The methods of `keras_adv.recipes` (`"clean"` is plain `fit`), the
#: objectives the recipes know settings for.
RECIPE_METHODS = ("clean", "pgd", "fgsm_rs", "trades", "n_fgsm", "free")

#: Certification methods of `evaluate_robustness(certify=...)` and
#: `keras-adv evaluate --certify`: the bound methods of
#: `keras_adv.certification.margin_bounds` and randomized smoothing (a
#: `SmoothedClassifier` in the API).
CERTIFY_METHODS = ("ibp", "crown_ibp", "crown", "smoothing")
CERTIFY_ALIASES: dict[str, str] = {
    "crown-ibp": "crown_ibp",
    "randomized_smoothing": "smoothing",
}


def canonical(
    name: object, names: Collection[str], aliases: Mapping[str, str]
) -> str | None:
    """The canonical spelling of `name` among `names`, or None.

    Args:
        name: Any value; only strings can match (case-insensitive).
        names: The canonical names (a dict or a sequence).
        aliases: Dict `old spelling -> canonical name`.
    """
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    if key in names:
        return key
    alias = aliases.get(key)
    return alias if alias in names else None


def closest(
    name: object, names: Collection[str], aliases: Mapping[str, str]
) -> str | None:
    """The canonical name whose spelling is closest to `name`, or None.

    Old spellings count as matches (`"crown-ib"` is closest to the alias
    `"crown-ibp"`); the canonical name they stand for is returned.
    """
    if not isinstance(name, str):
        return None
    spellings = [*names, *(a for a, n in aliases.items() if n in names)]
    matches = difflib.get_close_matches(name.strip().lower(), spellings, n=1)
    return aliases.get(matches[0], matches[0]) if matches else None


def unknown(
    kind: str,
    argument: str,
    name: object,
    names: Collection[str],
    aliases: Mapping[str, str],
    extra: str = "",
) -> str:
    """The error message for an unknown name, with the closest one.

    Args:
        kind: What is named (`"attack"`), for the message.
        argument: The argument that received `name`.
        name: The value received.
        names: The canonical names, listed in the message.
        aliases: Dict `old spelling -> canonical name`.
        extra: Optional text after the list (other accepted forms).
    """
    listed = ", ".join(repr(n) for n in sorted(names))
    message = (
        f"Invalid value received for argument `{argument}`. Expected one "
        f"of the {kind} names {listed}{extra}. Received: {argument}={name!r}"
    )
    guess = closest(name, names, aliases)
    if guess is not None:
        message += f". Did you mean {guess!r}?"
    return message


def generator_path(name: object) -> str | None:
    """The path of a `generator:PATH` name, or None for other names."""
    if not isinstance(name, str):
        return None
    head, sep, path = name.partition(":")
    if not sep or head.strip().lower() != GENERATOR:
        return None
    return path.strip()
