"""Verified accuracy for `RobustnessMonitor`: a proof beside the attacks.

The attacks of the monitor give an upper bound on robust accuracy (a
sample they fail to break may still be breakable); the bounds of
`keras_adv.certification` give the lower bound (a sample verified at eps
cannot be broken within eps). `MonitorCertification` computes that lower
bound on the monitor's fixed subset at every attack's current eps, norm
and value range, with one compiled function per model and (norm, value
range): eps is a tensor argument, and the function is traced at train
begin, so a model the bounds cannot handle fails there (naming the layer),
not after the first epoch.
"""

import time
import warnings
import weakref
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from typing import Any
from typing import cast

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _names
from keras_adv import _validation
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv.attacks import Attack
from keras_adv.certification import verified_mask
from keras_adv.certification._bounder import METHODS as BOUND_METHODS
from keras_adv.certification._bounder import NORMS

_SMOOTHING = "smoothing"
#: The bound methods: the certification names of `keras_adv._names` that
#: `keras_adv.certification.margin_bounds` takes (all but smoothing).
METHODS = tuple(m for m in _names.CERTIFY_METHODS if m in BOUND_METHODS)
_SMOOTHING_NOTE = (
    "randomized smoothing certifies a smoothed classifier, not the trained "
    "model: certify it after fit with "
    "keras_adv.evaluation.evaluate_robustness(certify=SmoothedClassifier("
    "model, sigma))"
)

#: Log key of the share of samples verified at every attack's ball.
VERIFIED_KEY = "val_verified_accuracy"
#: TensorBoard run of that share (a run per series: one colour each).
VERIFIED_RUN = "verified"

# Threat model of an attack: (norm, eps, value range).
_Threat = tuple[Norm, float, tuple[float, float] | None]


def verified_key(name: str) -> str:
    """The epoch-logs key of the share verified at attack `name`'s ball."""
    return f"val_{name}_verified_accuracy"


def verified_run(name: str) -> str:
    """The TensorBoard run of the share verified at attack `name`'s ball."""
    return f"{name}_{VERIFIED_RUN}"


def check_certify(certify: object) -> str | None:
    """`certify` as a canonical bound method name, or None.

    The names are those of `evaluate_robustness(certify=...)`
    (`keras_adv._names.CERTIFY_METHODS`, aliases included) but randomized
    smoothing, which certifies a smoothed classifier, not the model.

    Raises:
        TypeError: for anything but None or a string.
        ValueError: for an unknown name (with the closest known one) or
            `"smoothing"`.
    """
    if certify is None:
        return None
    if not isinstance(certify, str):
        raise TypeError(
            _validation.invalid(
                "certify",
                f"None or one of the bound method names {list(METHODS)} "
                f"({_SMOOTHING_NOTE})",
                certify,
            )
        )
    method = _names.canonical(
        certify, _names.CERTIFY_METHODS, _names.CERTIFY_ALIASES
    )
    if method == _SMOOTHING:
        raise ValueError(
            _validation.invalid(
                "certify",
                f"None or one of the bound method names {list(METHODS)} "
                f"({_SMOOTHING_NOTE})",
                certify,
            )
        )
    if method is None:
        raise ValueError(
            _names.unknown(
                "certification method",
                "certify",
                certify,
                METHODS,
                {
                    alias: name
                    for alias, name in _names.CERTIFY_ALIASES.items()
                    if name in METHODS
                },
                extra=" or None",
            )
        )
    return method


def clashing_names(attacks: Collection[str]) -> list[str]:
    """Attack names whose log keys or runs clash with the verified ones.

    `verified` (`val_verified_accuracy`), and `<name>_verified` next to an
    attack `<name>` (`val_<name>_verified_accuracy`).
    """
    return sorted(
        name
        for name in attacks
        if name == VERIFIED_RUN
        or (
            name.endswith(f"_{VERIFIED_RUN}")
            and name[: -len(VERIFIED_RUN) - 1] in attacks
        )
    )


class MonitorCertification:
    """The verified accuracy of a model on a fixed subset, per threat model.

    Args:
        method: `"ibp"`, `"crown_ibp"` or `"crown"` (checked by
            `check_certify`).
        attacks: Dict `name -> Attack` of the monitor: their norms, value
            ranges and (at each call) current eps define the balls.
        eps: Dict `name -> float`, the attacks' eps at construction: with
            more than one distinct ball, the logs get one key per attack.

    Raises:
        ValueError: for an attack whose norm the bounds do not cover.
    """

    def __init__(
        self,
        method: str,
        attacks: Mapping[str, Attack],
        eps: Mapping[str, float],
    ) -> None:
        for name, attack in attacks.items():
            if attack.norm not in NORMS:
                raise ValueError(
                    _validation.invalid(
                        "certify",
                        f"attacks in an L-inf or L2 ball {list(NORMS)}: "
                        "the bounds certify Lp balls (attack "
                        f"{name!r} has norm {attack.norm!r}); "
                        "certify=None",
                        method,
                    )
                )
        self.method = method
        self.attacks = dict(attacks)
        threats = {self._threat(name, eps[name]) for name in self.attacks}
        #: Whether the logs hold one key per attack (distinct balls).
        self.per_attack = len(threats) > 1
        self._model: weakref.ref[keras.Model] | None = None
        self._functions: dict[Any, Any] = {}
        self._traces = 0  # of the functions of earlier models

    def _threat(self, name: str, eps: float) -> _Threat:
        attack = self.attacks[name]
        value_range = attack.value_range
        if value_range is not None:
            value_range = (float(value_range[0]), float(value_range[1]))
        # The norms were checked at construction.
        return cast(Norm, attack.norm), float(eps), value_range

    # ------------------------------------------------------------- keys
    def keys(self) -> list[str]:
        """The log keys, in order."""
        keys = [VERIFIED_KEY]
        if self.per_attack:
            keys += [verified_key(name) for name in self.attacks]
        return keys

    def runs(self) -> list[str]:
        """The TensorBoard runs (series), in the order of `keys`."""
        runs = [VERIFIED_RUN]
        if self.per_attack:
            runs += [verified_run(name) for name in self.attacks]
        return runs

    def values(self, results: Mapping[str, Any]) -> list[float]:
        """The values of `keys` (and `runs`) from `evaluate`'s results."""
        values = [results["verified_accuracy"]]
        if self.per_attack:
            values += [results["verified"][name] for name in self.attacks]
        return values

    # ---------------------------------------------------------- compiled
    def tracing_count(self) -> int:
        """Traces of the certification functions so far."""
        return self._traces + sum(
            fn.experimental_get_tracing_count()
            for fn in self._functions.values()
        )

    def prepare(self, model: keras.Model, x: np.ndarray) -> None:
        """Compiles (traces) the functions of `model`, once per model.

        Raises:
            NotImplementedError: for a layer the bounds cannot handle (or,
                with CROWN methods, relax), naming it.
            ValueError: for a model the bounds cannot read (subclassed,
                several inputs, fewer than two classes), or inputs of
                another shape than the model's.
        """
        if self._model is not None and self._model() is model:
            return
        _check_input_shape(model, x)
        self._traces = self.tracing_count()
        self._functions = {}
        self._model = weakref.ref(model)
        spec = (
            tf.TensorSpec((None, *x.shape[1:]), tf.float32),
            tf.TensorSpec((None,), tf.int64),
            tf.TensorSpec((), tf.float32),
        )
        for name in self.attacks:
            norm, _, value_range = self._threat(name, 0.0)
            if (norm, value_range) in self._functions:
                continue
            fn = tf.function(
                _certifier(model, self.method, norm, value_range),
                input_signature=spec,
                autograph=False,
            )
            try:
                fn.get_concrete_function()
            except (NotImplementedError, ValueError) as error:
                self._model = None
                kind = (
                    NotImplementedError
                    if isinstance(error, NotImplementedError)
                    else ValueError
                )
                raise kind(
                    f"RobustnessMonitor(certify={self.method!r}) cannot "
                    f"certify model {model.name!r}: {error}"
                ) from error
            self._functions[norm, value_range] = fn

    def evaluate(
        self,
        model: keras.Model,
        x: np.ndarray,
        y: np.ndarray,
        eps: Mapping[str, float],
        batch_size: int,
    ) -> dict[str, Any]:
        """Verified shares of `model` on `(x, y)` at each attack's ball.

        Each distinct ball costs one bound pass over the subset.

        Returns:
            A dict: `"verified_accuracy"` (float, the share verified at
            every attack's ball), `"verified"` (name -> float, at that
            attack's ball), `"verified_mask"` (bool array, per sample, at
            every ball), `"verified_masks"` (name -> bool array, per
            sample, at that attack's ball) and `"verified_seconds"`.
        """
        self.prepare(model, x)
        start = time.perf_counter()
        x = x.astype("float32", copy=False)
        y = y.astype("int64", copy=False)
        masks: dict[_Threat, np.ndarray] = {}
        verified = {}
        for name in self.attacks:
            threat = self._threat(name, eps[name])
            if threat not in masks:
                fn = self._functions[threat[0], threat[2]]
                radius = np.float32(threat[1])
                masks[threat] = np.concatenate(
                    [
                        np.asarray(
                            fn(
                                x[i : i + batch_size],
                                y[i : i + batch_size],
                                radius,
                            )
                        )
                        for i in range(0, len(x), batch_size)
                    ]
                )
            verified[name] = float(np.mean(masks[threat]))
        every = np.logical_and.reduce(list(masks.values()))
        return {
            "verified_accuracy": float(np.mean(every)),
            "verified": verified,
            "verified_mask": every,
            "verified_masks": {
                name: masks[self._threat(name, eps[name])]
                for name in self.attacks
            },
            "verified_seconds": time.perf_counter() - start,
        }


def check_soundness(
    results: Mapping[str, Any], y: np.ndarray, low_precision: bool
) -> None:
    """Raises if an attack broke a sample verified at its ball.

    A sample verified at eps is classified correctly everywhere in the
    ball, so an attack within eps that changes its prediction (or a wrong
    clean prediction) contradicts the proof: a soundness bug of the
    bounds, a `RuntimeError` naming the samples and attacks. When the
    model computes in float16 or bfloat16 the bounds are those of the
    float32 network and rounding near a zero margin can contradict them:
    a `UserWarning` instead.

    Args:
        results: `RobustnessMonitor.evaluate`'s dict with the certification
            (`"verified_masks"`, `"clean_pred"`, `"adv_pred"`).
        y: Int labels of the monitored samples.
        low_precision: Whether the model computes in float16 or bfloat16.
    """
    clean_ok = results["clean_pred"] == y
    found = []
    for name, verified in results["verified_masks"].items():
        broken = verified & ~(clean_ok & (results["adv_pred"][name] == y))
        found += [(name, int(i)) for i in np.flatnonzero(broken)]
    if not found:
        return
    shown = "; ".join(
        f"sample {i} is verified at the ball of attack {name!r} "
        f"(eps {results['eps'][name]:g}) but "
        f"{'its clean input' if not clean_ok[i] else 'the attack'} "
        "changes its prediction"
        for name, i in found[:5]
    )
    if len(found) > 5:
        shown += f" (and {len(found) - 5} more)"
    if low_precision:
        warnings.warn(
            f"RobustnessMonitor: verified samples broken by an attack: "
            f"{shown}. The model computes in float16 or bfloat16 and the "
            "bounds are those of the float32 network: rounding near a zero "
            "margin can contradict them.",
            UserWarning,
            stacklevel=3,
        )
        return
    raise RuntimeError(
        f"RobustnessMonitor: a certificate was broken: {shown} (samples "
        "numbered from 0 in the monitor's subset). A verified sample is "
        "classified correctly everywhere in the ball, so this is a "
        "soundness bug in keras_adv.certification's bounds: please report "
        "it with the model. Monitor with certify=None to get the attack "
        "figures."
    )


def _check_input_shape(model: keras.Model, x: np.ndarray) -> None:
    """The subset's sample shape is the model's input shape.

    Keras runs a model on inputs of a compatible other shape (with a
    warning), the bounds do not: they would bound another computation.
    """
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        return  # the bounds refuse it, with their own message
    expected = tuple(inputs[0].shape[1:])
    if len(expected) == x.ndim - 1 and all(
        e is None or e == n for e, n in zip(expected, x.shape[1:])
    ):
        return
    raise ValueError(
        _validation.invalid(
            "validation_data",
            f"with certify, inputs of the model's shape (batch, "
            f"{', '.join(map(str, expected))}) for model {model.name!r}",
            f"inputs of shape {x.shape}",
        )
    )


def _certifier(
    model: keras.Model,
    method: str,
    norm: Norm,
    value_range: tuple[float, float] | None,
) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """The graph body: per-sample verified masks of one batch."""

    def certify(x: Tensor, y: Tensor, eps: Tensor) -> Tensor:
        # Per-sample radii, as `verified_accuracy` passes them.
        eps = tf.broadcast_to(eps, tf.shape(x)[:1])
        return verified_mask(model, x, y, eps, method, norm, value_range)

    return certify
