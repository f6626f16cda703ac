"""Certified accuracy beside the attacks: the lower bounds of a sweep.

`certificates` turns `evaluate_robustness(certify=...)` into checked
certificates: a bound method of `keras_adv.certification` (`"ibp"`,
`"crown_ibp"`, `"crown"`: `verified_mask` with the true labels) or a
`SmoothedClassifier` (Cohen et al.'s `certify`, correct and certified at
L2 radius eps). `Certification` runs them on every batch of the sweep at
every eps, on the samples the attacks see, and keeps the per-sample
masks; `soundness` confronts the bound certificates with the attacks
sample by sample (a sample proven robust at eps that an attack breaks at
eps is a bug) and `Certification.report_fields` writes the report's
`certified` entries.

A bound certificate proves something about the model itself, so its
certified accuracy is a lower bound of the model's robust accuracy and
can never exceed an attack's. Randomized smoothing certifies another
classifier, the smoothed `g`: its figure is `g`'s lower bound, and attacks
on the model are no upper bound of it (nothing is checked against them).
"""

import time
import warnings
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import cast

import keras
import numpy as np

from keras_adv import _names
from keras_adv import _validation
from keras_adv._types import Norm
from keras_adv._types import ValueRange
from keras_adv.attacks import Attack
from keras_adv.certification import SmoothedClassifier
from keras_adv.certification import verified_mask
from keras_adv.evaluation._accounting import Sweep

SMOOTHING = "smoothing"
BOUND_METHODS = tuple(m for m in _names.CERTIFY_METHODS if m != SMOOTHING)
#: `certify_options` of randomized smoothing and their defaults: Cohen et
#: al.'s n0 and alpha; n = 10,000 estimation samples (theirs: 100,000)
#: caps the certified radius at about 3.5 sigma.
SMOOTHING_OPTIONS = {"n0": 100, "n": 10_000, "alpha": 0.001}
# Contradictions listed in a soundness error.
_SHOWN = 3


class BoundCertificate:
    """`verified_mask` of one bound method at each eps of a sweep."""

    def __init__(
        self,
        model: keras.Model,
        method: str,
        norm: Norm,
        value_range: ValueRange,
    ) -> None:
        self.model = model
        self.name = self.method = method
        self.norm = norm
        self.value_range = value_range

    def masks(
        self,
        x: np.ndarray,
        y: np.ndarray,
        epsilons: Sequence[float],
        seed: np.ndarray,
    ) -> np.ndarray:
        """Bool `(len(epsilons), batch)`: verified at each eps."""
        return np.stack(
            [
                np.asarray(
                    verified_mask(
                        self.model,
                        x,
                        y,
                        eps,
                        self.method,
                        self.norm,
                        self.value_range,
                    )
                )
                for eps in epsilons
            ]
        )

    def settings(self) -> dict[str, Any]:
        return {"value_range": list(self.value_range)}


class SmoothingCertificate:
    """`SmoothedClassifier.certify`: correct with a radius of eps or more."""

    method = SMOOTHING
    norm = "l2"

    def __init__(
        self, name: str, smoothed: SmoothedClassifier, options: dict[str, Any]
    ) -> None:
        self.name = name
        self.smoothed = smoothed
        self.options = options
        self.samples = self.abstained = 0

    def masks(
        self,
        x: np.ndarray,
        y: np.ndarray,
        epsilons: Sequence[float],
        seed: np.ndarray,
    ) -> np.ndarray:
        predictions, radii = self.smoothed.certify(x, seed=seed, **self.options)
        self.samples += len(x)
        self.abstained += int(np.sum(predictions == SmoothedClassifier.ABSTAIN))
        correct = predictions == y
        return np.stack([correct & (radii >= eps) for eps in epsilons])

    def settings(self) -> dict[str, Any]:
        return {
            "sigma": self.smoothed.sigma,
            **self.options,
            "abstention_rate": self.abstained / max(self.samples, 1),
        }


Certificate = BoundCertificate | SmoothingCertificate


def certificates(
    certify: Any,
    model: keras.Model,
    attacks: Mapping[str, Attack],
    options: Mapping[str, Any] | None,
) -> dict[str, Certificate]:
    """The checked certificates of `certify`, by report name.

    Args:
        certify: None, a bound method name, a `SmoothedClassifier` of
            `model`, or a list or tuple of them.
        model: The evaluated model.
        attacks: The evaluation's attacks (their norm is the certificates'
            threat model, the union of their value ranges their domain).
        options: `certify_options`: `n0`, `n`, `alpha` of smoothing.

    Returns:
        An ordered dict `name -> certificate` (empty for None).
    """
    items = _certify_items(certify)
    if not items:
        if options is not None:
            raise ValueError(_options_without_smoothing(options))
        return {}
    norms = sorted({attack.norm for attack in attacks.values()})
    if len(norms) > 1:
        raise ValueError(
            _validation.invalid(
                "certify",
                "attacks of one norm, the threat model the certificates "
                "prove (evaluate L-inf and L2 in separate calls)",
                f"{certify!r} with attacks of norms {norms}",
            )
        )
    norm = cast(Norm, norms[0])
    if norm not in ("linf", "l2"):
        raise ValueError(
            _validation.invalid(
                "certify",
                "attacks on an L-inf or L2 ball (the balls certificates prove)",
                f"{certify!r} with attacks on a {norm!r} threat model",
            )
        )
    lows, highs = zip(*(a.value_range for a in attacks.values()), strict=True)
    value_range = (float(min(lows)), float(max(highs)))
    made: dict[str, Certificate] = {}
    smoothing = [item for item in items if isinstance(item, SmoothedClassifier)]
    settings = _smoothing_options(options, bool(smoothing))
    for item in items:
        if isinstance(item, str):
            made.setdefault(
                item, BoundCertificate(model, item, norm, value_range)
            )
            continue
        _check_smoothed(item, model, norm)
        count = sum(isinstance(c, SmoothingCertificate) for c in made.values())
        name = SMOOTHING if not count else f"{SMOOTHING}_{count + 1}"
        made[name] = SmoothingCertificate(name, item, settings)
    return made


def _certify_items(certify: Any) -> list[str | SmoothedClassifier]:
    if certify is None:
        return []
    if isinstance(certify, str | SmoothedClassifier):
        certify = [certify]
    elif not isinstance(certify, list | tuple) or not certify:
        raise TypeError(
            _validation.invalid(
                "certify",
                f"None, one of {list(BOUND_METHODS)}, a SmoothedClassifier "
                "or a non-empty list of them",
                certify,
            )
        )
    return [_certify_item(item) for item in certify]


def _certify_item(item: Any) -> str | SmoothedClassifier:
    if isinstance(item, SmoothedClassifier):
        return item
    if not isinstance(item, str):
        raise TypeError(
            _validation.invalid(
                "certify",
                f"method names ({', '.join(BOUND_METHODS)}) or "
                "SmoothedClassifier objects",
                item,
            )
        )
    method = _names.canonical(
        item, _names.CERTIFY_METHODS, _names.CERTIFY_ALIASES
    )
    if method is None:
        raise ValueError(
            _names.unknown(
                "certification method",
                "certify",
                item,
                _names.CERTIFY_METHODS,
                _names.CERTIFY_ALIASES,
                extra=" or a SmoothedClassifier",
            )
        )
    if method == SMOOTHING:
        raise ValueError(
            _validation.invalid(
                "certify",
                "a SmoothedClassifier for randomized smoothing (its noise "
                "sigma must be the one the model was trained with): "
                "certify=SmoothedClassifier(model, sigma=0.25)",
                item,
            )
        )
    return method


def _check_smoothed(
    smoothed: SmoothedClassifier, model: keras.Model, norm: str
) -> None:
    if smoothed.model is not model:
        raise ValueError(
            _validation.invalid(
                "certify",
                "a SmoothedClassifier of the evaluated model (its "
                "certificates must be about the samples' classifier)",
                f"{smoothed!r} of another model than {model.name!r}",
            )
        )
    if norm != "l2":
        # An L2 certificate of radius r covers the L-inf ball of radius
        # r / sqrt(d) only: on 28x28 images eps 0.1 needs r = 2.8, beyond
        # what smoothing certifies in practice (about 4 sigma): refuse
        # rather than report a column of zeros.
        raise ValueError(
            _validation.invalid(
                "certify",
                "L2 attacks with a SmoothedClassifier (randomized smoothing "
                "certifies L2 balls; an L2 radius r covers only the L-inf "
                "ball of radius r / sqrt(input size), vacuous for images): "
                "evaluate with L2 attacks, e.g. attacks=PGD(norm='l2')",
                f"{smoothed!r} with attacks of norm {norm!r}",
            )
        )


def _smoothing_options(
    options: Mapping[str, Any] | None, smoothing: bool
) -> dict[str, Any]:
    """`n0`, `n`, `alpha` of `SmoothedClassifier.certify`, checked."""
    if options is None:
        return dict(SMOOTHING_OPTIONS)
    if not isinstance(options, Mapping):
        raise TypeError(
            _validation.invalid(
                "certify_options",
                f"a dict with keys among {list(SMOOTHING_OPTIONS)}",
                options,
            )
        )
    if not smoothing:
        raise ValueError(_options_without_smoothing(options))
    settings = dict(SMOOTHING_OPTIONS)
    for key, value in options.items():
        if key not in SMOOTHING_OPTIONS:
            message = _validation.invalid(
                "certify_options",
                f"keys among {list(SMOOTHING_OPTIONS)}",
                dict(options),
            )
            guess = _names.closest(key, SMOOTHING_OPTIONS, {})
            hint = f" Did you mean {guess!r} for {key!r}?" if guess else ""
            raise ValueError(message + hint)
        if key == "alpha":
            value = _validation.check_number(
                "certify_options['alpha']",
                value,
                minimum=0.0,
                strict=True,
                maximum=0.5,
            )
        else:
            value = _validation.check_int(
                f"certify_options[{key!r}]", value, minimum=1
            )
        settings[key] = value
    return settings


def _options_without_smoothing(options: Any) -> str:
    return _validation.invalid(
        "certify_options",
        "None unless `certify` holds a SmoothedClassifier (the options "
        "are randomized smoothing's n0, n and alpha)",
        options,
    )


class Certification:
    """The per-sample certificates of a sweep, batch by batch.

    Args:
        certificates: Dict `name -> certificate` (`certificates`).
        epsilons: The sweep's sorted radii.
    """

    def __init__(
        self, certificates: Mapping[str, Certificate], epsilons: Sequence[float]
    ) -> None:
        self.certificates = dict(certificates)
        self.epsilons = list(epsilons)
        # Per certificate, the bool (len(epsilons), batch) masks of batches.
        self.batches: dict[str, list[np.ndarray]] = {
            name: [] for name in certificates
        }
        self.seconds = dict.fromkeys(certificates, 0.0)

    def add_batch(
        self, x: np.ndarray, y: np.ndarray, seeds: np.ndarray
    ) -> None:
        """Certifies one batch at every eps (`seeds`: one per certificate)."""
        for k, (name, certificate) in enumerate(self.certificates.items()):
            start = time.perf_counter()
            masks = certificate.masks(x, y, self.epsilons, seeds[k])
            self.batches[name].append(np.asarray(masks, bool))
            self.seconds[name] += time.perf_counter() - start

    def masks(self, name: str) -> np.ndarray:
        """Bool `(len(epsilons), num_samples)` of certificate `name`."""
        return np.concatenate(self.batches[name], axis=1)

    def report_fields(
        self, num_samples: int, broken: Mapping[str, np.ndarray]
    ) -> dict[str, dict[str, Any]]:
        """The report's `certified` entries.

        A sample an attack broke (only under mixed precision, `soundness`)
        does not count as certified; `"broken"` says how many there were.
        """
        fields = {}
        for name, certificate in self.certificates.items():
            masks = self.masks(name)
            entry: dict[str, Any] = {
                "method": certificate.method,
                "norm": certificate.norm,
                "accuracy": [],
                "seconds": self.seconds[name],
                "settings": certificate.settings(),
            }
            if name in broken:
                masks = masks & ~broken[name]
                entry["broken"] = broken[name].sum(axis=1).tolist()
            entry["accuracy"] = (masks.sum(axis=1) / num_samples).tolist()
            fields[name] = entry
        return fields


def low_precision(model: keras.Model) -> bool:
    """Whether any layer of `model` computes in float16 or bfloat16."""
    pending = [model]
    while pending:
        layer = pending.pop()
        if layer.compute_dtype in ("float16", "bfloat16"):
            return True
        pending.extend(getattr(layer, "layers", None) or [])
    return False


def soundness(
    certification: Certification, sweep: Sweep, mixed_precision: bool
) -> dict[str, np.ndarray]:
    """Bound certificates against the attacks, sample by sample.

    A sample verified at eps is classified correctly everywhere in the
    ball: no attack within eps may change its prediction. One that does
    is a soundness bug of the bounds: a `RuntimeError` naming the samples.
    Under mixed precision the bounds are those of the float32 network,
    which the model's float16 outputs may contradict by rounding near a
    zero margin: a `UserWarning` instead, and the samples are returned.

    Returns:
        Dict `name -> bool (len(epsilons), num_samples)` of the bound
        certificates: verified samples that an attack broke.
    """
    broken: dict[str, np.ndarray] = {}
    found = []
    for name, certificate in certification.certificates.items():
        if not isinstance(certificate, BoundCertificate):
            continue
        certified = certification.masks(name)
        broken[name] = np.zeros_like(certified)
        for i, eps in enumerate(certification.epsilons):
            survived = sweep.survived_masks(i)
            bad = certified[i] & ~np.logical_and.reduce(list(survived.values()))
            broken[name][i] = bad
            for sample in np.flatnonzero(bad):
                # The first attack that breaks it (at eps 0: the clean input).
                attack = next(a for a, ok in survived.items() if not ok[sample])
                found.append((name, eps, attack, int(sample)))
    if not found:
        return broken
    shown = "; ".join(
        f"{name!r} verifies sample {sample} at eps {eps:g} but "
        f"{'the clean input' if eps == 0 else f'attack {attack!r}'} "
        "changes its prediction"
        for name, eps, attack, sample in found[:_SHOWN]
    )
    more = len(found) - _SHOWN
    shown += f" (and {more} more)" if more > 0 else ""
    if mixed_precision:
        warnings.warn(
            f"Certified samples broken by an attack: {shown} (samples "
            "numbered from 0 in the order of `data`). The model computes in "
            "float16 or bfloat16 and the bounds are those of the float32 "
            "network: rounding near a zero margin can contradict them. The "
            "report does not count these samples as certified.",
            UserWarning,
            stacklevel=3,
        )
        return broken
    raise RuntimeError(
        f"A certificate was broken: {shown} (samples numbered from 0 in "
        "the order of `data`). A verified sample is classified correctly "
        "everywhere in the ball, so this is a soundness bug in "
        "keras_adv.certification's bounds: please report it with the "
        "model. Evaluate with certify=None to get the attack figures."
    )
