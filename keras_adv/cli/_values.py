"""The value types of `keras-adv`'s options (standard library only).

Each parses one option's text into the value the API takes, or raises
`argparse.ArgumentTypeError` with a one-line message (argparse names the
option): registry names in their canonical spelling with a guess for a
typo, radii, probabilities, fractions and counts.
"""

import argparse
import math
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence

from keras_adv import _names

# The names of keras_adv.attacks.get and of the recipes' methods (the
# training objectives of keras_adv.training.get and "clean").
ATTACKS = tuple(_names.ATTACKS)
TRAIN_METHODS = _names.RECIPE_METHODS
# The methods of evaluate_robustness(certify=...): bounds and smoothing.
CERTIFY_METHODS = _names.CERTIFY_METHODS
NORMS = ("linf", "l2")
GENERATOR = f"{_names.GENERATOR}:PATH.keras"


def unknown(
    kind: str,
    text: str,
    names: Sequence[str],
    aliases: Mapping[str, str],
    extra: str = "",
) -> argparse.ArgumentTypeError:
    guess = _names.closest(text, names, aliases)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return argparse.ArgumentTypeError(
        f"unknown {kind} {text.strip()!r}; choose from "
        f"{', '.join(names)}{extra}{hint}"
    )


def attack_name(part: str) -> str:
    """The canonical name of an attack; `generator:PATH` keeps its path."""
    path = _names.generator_path(part)
    if path is not None:
        if not path:
            raise argparse.ArgumentTypeError(
                f"expected {GENERATOR} (a saved generator); received {part!r}"
            )
        return f"{_names.GENERATOR}:{path}"
    name = _names.canonical(part, _names.ATTACKS, _names.ATTACK_ALIASES)
    if name is None:
        raise unknown(
            "attack",
            part,
            ATTACKS,
            _names.ATTACK_ALIASES,
            extra=f" or {GENERATOR}",
        )
    return name


def parse_attacks(text: str) -> list[str]:
    """`"fgsm,PGD"` -> `["fgsm", "pgd"]` (canonical names, no duplicates).

    The names of `keras_adv.attacks.get`; `generator:PATH.keras` names a
    saved AdvGAN generator.
    """
    parts = text.split(",")
    if not text.strip() or any(not part.strip() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(ATTACKS)} or "
            f"{GENERATOR}; received {text!r}"
        )
    return list(dict.fromkeys(attack_name(part) for part in parts))


def parse_certify(text: str) -> list[str]:
    """`"IBP,crown_ibp"` -> `["ibp", "crown_ibp"]` (canonical, no repeats).

    The bound methods of `keras_adv.certification.margin_bounds` and
    `smoothing` (a `SmoothedClassifier` built from `--sigma`).
    """
    parts = text.split(",")
    if not text.strip() or any(not part.strip() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(CERTIFY_METHODS)}"
            f"; received {text!r}"
        )
    methods = []
    for part in parts:
        method = _names.canonical(
            part, _names.CERTIFY_METHODS, _names.CERTIFY_ALIASES
        )
        if method is None:
            raise unknown(
                "certification method",
                part,
                CERTIFY_METHODS,
                _names.CERTIFY_ALIASES,
            )
        methods.append(method)
    return list(dict.fromkeys(methods))


def parse_method(text: str) -> str:
    """A recipe method's canonical name (`"fgsm-rs"` -> `"fgsm_rs"`)."""
    method = _names.canonical(
        text, _names.RECIPE_METHODS, _names.OBJECTIVE_ALIASES
    )
    if method is None:
        raise unknown("method", text, TRAIN_METHODS, _names.OBJECTIVE_ALIASES)
    return method


def parse_eps(text: str) -> list[float]:
    """`"0.1,0.2"` -> `[0.0, 0.1, 0.2]`: 0 (clean) is always included."""
    values = []
    for part in text.split(","):
        try:
            value = float(part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                "expected comma-separated numbers >= 0, e.g. 0.1,0.2,0.3; "
                f"received {text!r}"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(
                f"radii must be finite numbers >= 0; received {part!r}"
            )
        values.append(value)
    return sorted(set([0.0] + values))


def integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, received {text!r}"
            )
        return value

    return parse


def radius(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0, received {text!r}"
        )
    return value


def sigma(text: str) -> float:
    value = radius(text)
    if value == 0:
        raise argparse.ArgumentTypeError(
            f"expected a number > 0, received {text!r}"
        )
    return value


def alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(
            f"expected a probability in (0, 0.5], received {text!r}"
        )
    return value


def fraction(upper: float, closed: bool) -> Callable[[str], float]:
    """A number in `(0, upper]` (`closed`) or `(0, upper)`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = 0 < value <= upper if closed else 0 <= value < upper
        if not inside:
            bounds = f"(0, {upper:g}]" if closed else f"[0, {upper:g})"
            raise argparse.ArgumentTypeError(
                f"expected a number in {bounds}, received {text!r}"
            )
        return value

    return parse


real_fraction = fraction(1.0, closed=True)
momentum = fraction(1.0, closed=False)
positive = integer(1)
non_negative = integer(0)
