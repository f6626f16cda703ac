"""AutoAttack's step-by-step evaluation: its report and helpers.

`AutoAttackReport` (what `AutoAttack.evaluate` returns: per-attack robust
accuracy, times, per-sample results, sanity flags) and what the schedule
needs around the attacks themselves: a compiled batched prediction, the
progress bar, and the reference's sanity checks (fra31/auto-attack,
`autoattack/checks.py`). The ensemble is in `_autoattack.py`.
"""

import os
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv._outputs import looks_like_probabilities
from keras_adv._types import Tensor
from keras_adv.attacks._logits import ModelLogits

SQUARE_MARGIN = 0.002  # the reference's gradient-masking threshold


class AutoAttackReport:
    """The outcome of `AutoAttack.evaluate`.

    Attributes:
        version, norm, eps, num_samples: The evaluation's settings.
        clean_accuracy: Float, accuracy on the clean inputs.
        robust_after: Dict attack name -> robust accuracy after that attack
            (cumulative: a sample counts if it survived it and every
            earlier one).
        robust_accuracy: Float, the AutoAttack robust accuracy.
        seconds: Dict attack name -> wall time.
        total_seconds: Float.
        robust: Bool array `(n,)`, per-sample robustness.
        x_adv: Array, the adversarial examples (the clean input where no
            attack succeeded).
        flags: List of sanity warnings (strings).
    """

    def __init__(
        self,
        version: str,
        norm: str,
        eps: float,
        num_samples: int,
        clean_accuracy: float,
    ) -> None:
        self.version = version
        self.norm = norm
        self.eps = eps
        self.num_samples = num_samples
        self.clean_accuracy = clean_accuracy
        self.robust_after: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.robust_accuracy = clean_accuracy
        self.total_seconds = 0.0
        self.robust: np.ndarray | None = None
        self.x_adv: np.ndarray | None = None
        self.flags: list[str] = []

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (without the arrays)."""
        return {
            "attack": f"AutoAttack ({self.version}, {self.norm}, "
            f"eps={self.eps:g})",
            "num_samples": self.num_samples,
            "clean_accuracy": self.clean_accuracy,
            "robust_after": dict(self.robust_after),
            "robust_accuracy": self.robust_accuracy,
            "seconds": dict(self.seconds),
            "total_seconds": self.total_seconds,
            "flags": list(self.flags),
        }

    def _title(self) -> str:
        return (
            f"AutoAttack {self.version} ({self.norm}, eps={self.eps:g}), "
            f"{self.num_samples} samples"
        )

    def table(self) -> str:
        """A plain-text table for terminals: clean, then after each attack.

        Example:

        >>> from keras_adv.attacks import AutoAttackReport
        >>> report = AutoAttackReport("standard", "linf", 0.3, 200, 0.98)
        >>> report.robust_after = {"apgd-ce": 0.9}
        >>> report.seconds = {"apgd-ce": 12.3}
        >>> report.robust_accuracy, report.total_seconds = 0.9, 12.5
        >>> print(report.table())
        AutoAttack standard (linf, eps=0.3), 200 samples
        <BLANKLINE>
        after       robust accuracy  seconds
        clean                98.00%
        apgd-ce              90.00%     12.3
        AutoAttack           90.00%     12.5
        <BLANKLINE>
        AutoAttack: a sample counts as robust only if it resists every
        attack above (each attack runs on the samples still robust).
        """
        rows: list[tuple[str, float, float | None]] = [
            ("clean", self.clean_accuracy, None)
        ]
        rows += [
            (name, value, self.seconds[name])
            for name, value in self.robust_after.items()
        ]
        rows.append(("AutoAttack", self.robust_accuracy, self.total_seconds))
        width = max(len(name) for name, _, _ in rows) + 2
        lines = [
            self._title(),
            "",
            f"{'after':<{width}}robust accuracy  seconds",
        ]
        for name, value, seconds in rows:
            cell = "" if seconds is None else f"{seconds:9.1f}"
            lines.append(f"{name:<{width}}{100 * value:14.2f}%{cell}")
        lines += [
            "",
            "AutoAttack: a sample counts as robust only if it resists every",
            "attack above (each attack runs on the samples still robust).",
        ]
        return "\n".join(lines)

    def to_markdown(self, path: str | os.PathLike[str] | None = None) -> str:
        """The table in Markdown (for files and TensorBoard's text tab).

        Args:
            path: Optional path of a `.md` file to write. Defaults to
                `None`.

        Returns:
            The Markdown text.
        """
        lines = [
            self._title(),
            "",
            "| after | robust accuracy | seconds |",
            "|---|---|---|",
            f"| clean | {100 * self.clean_accuracy:.2f}% | |",
        ]
        for name, value in self.robust_after.items():
            lines.append(
                f"| {name} | {100 * value:.2f}% | {self.seconds[name]:.1f} |"
            )
        lines.append(
            f"| **AutoAttack** | **{100 * self.robust_accuracy:.2f}%** | "
            f"{self.total_seconds:.1f} |"
        )
        text = "\n".join(lines)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"AutoAttackReport(clean={self.clean_accuracy:.4f}, "
            f"robust={self.robust_accuracy:.4f}, version={self.version!r})"
        )


# One compiled prediction per model (weakly) and `from_logits`: calls to
# `evaluate` reuse its traces instead of retracing for every call.
_PREDICTORS: weakref.WeakKeyDictionary[
    keras.Model, dict[bool | None, Callable[[np.ndarray], np.ndarray]]
] = weakref.WeakKeyDictionary()


def _predictor(
    model: keras.Model, from_logits: bool | None
) -> Callable[[np.ndarray], np.ndarray]:
    """Numpy inputs -> numpy logits of `model`, compiled once."""
    per_model = _PREDICTORS.setdefault(model, {})
    cached = per_model.get(from_logits)
    if cached is not None:
        return cached
    model_ref = weakref.ref(model)  # the cache must not keep it alive

    @tf.function(reduce_retracing=True)
    def run(x: Tensor) -> Tensor:
        return ModelLogits(model_ref(), from_logits)(x)

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(run(tf.convert_to_tensor(x, tf.float32)))

    per_model[from_logits] = predict
    return predict


def _batched(
    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch_size: int
) -> np.ndarray:
    return np.concatenate(
        [predict(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    )


def _progress_bar(
    name: str, samples: int, batches: int, verbose: int
) -> keras.utils.Progbar | None:
    """A Keras progress bar over an attack's batches (verbose 1 only)."""
    if verbose != 1 or not batches:
        return None
    print(f"{name.upper()} on {samples} samples", flush=True)
    return keras.utils.Progbar(
        batches,
        verbose=1,
        unit_name="batch",
        stateful_metrics=["robust_accuracy"],
    )


def _sanity_flags(
    model: keras.Model, x: np.ndarray, logits: np.ndarray, version: str
) -> list[str]:
    """The reference's checks (`autoattack/checks.py`), as messages."""
    flags = []
    outputs = np.asarray(model(x, training=False))
    if bool(looks_like_probabilities(ops.convert_to_tensor(outputs))):
        flags.append(
            "The model outputs probabilities (rows sum to 1): AutoAttack "
            "attacks their logarithm; make sure the softmax is not hiding "
            "vanishing gradients (evaluate the logits if you can)."
        )
    repeats = [np.asarray(model(x, training=False)) for _ in range(4)]
    if any(np.abs(r - outputs).max() > 1e-6 for r in repeats):
        flags.append(
            "The model's outputs change between forward passes: it is "
            "randomised. Use version='rand' (expectation over "
            "transformation)."
        )
    if logits.shape[-1] < 4 and version in ("standard", "plus"):
        flags.append(
            f"The model has {logits.shape[-1]} classes: the targeted DLR "
            "loss needs at least 4 (APGD-T is skipped) and the DLR loss 3; "
            "FAB-T uses the classes there are."
        )
    return flags


def _square_flag(report: AutoAttackReport) -> list[str]:
    names = list(report.robust_after)
    if "square" not in names:
        return []
    before = [report.robust_after[n] for n in names[: names.index("square")]]
    if not before:
        return []
    gained = before[-1] - report.robust_after["square"]
    if gained > SQUARE_MARGIN:
        return [
            f"Square (a black-box attack) lowered the robust accuracy by "
            f"{100 * gained:.2f} points after the white-box attacks: a "
            "sign of gradient masking. The white-box numbers alone "
            "overstate robustness."
        ]
    return []
