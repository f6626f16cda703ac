"""Accounting: the one definition of robust, and the counts of a sweep.

`robust_masks` says which samples are robust (correct clean and under the
attack) and which survive the worst case (correct clean and under every
attack); `Sweep` accumulates the figures of an `evaluate_robustness` radius
sweep batch by batch (or, for an attack run over all samples at once,
AutoAttack's schedule, in one go) and turns them into the report's fields.
"""

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_adv.attacks import Attack
from keras_adv.evaluation._attack_set import attack_config
from keras_adv.evaluation._attack_set import attack_steps
from keras_adv.evaluation._graph import CHECK_STATS


def robust_masks(
    clean_correct: np.ndarray, correct: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-sample robustness at one eps, the one definition of keras_adv.

    A sample is robust to an attack iff it is classified correctly both
    clean and under the attack; it is robust in the worst case iff it is
    classified correctly clean and under every attack.

    Args:
        clean_correct: Bool array `(n,)`.
        correct: Dict `name -> bool array (n,)`: correct under the attack.

    Returns:
        `(robust, worst)`: a dict `name -> bool array` and a bool array.
    """
    clean_correct = np.asarray(clean_correct, bool)
    robust = {
        name: np.logical_and(clean_correct, np.asarray(ok, bool))
        for name, ok in correct.items()
    }
    worst = np.logical_and.reduce([clean_correct, *robust.values()])
    return robust, worst


class Sweep:
    """The running counts of a sweep of attacks over radii, per batch.

    Per attack and radius: samples robust (`robust_masks`, counted and
    kept per sample for the certificates' soundness check), correct clean
    samples the attack flips, sums and maxima of the perturbation norms,
    and seconds spent; per radius the per-sample worst case; the clean
    accuracy; per norm the accuracy under random noise of the same radius.
    With `checks`, also the gradient-masking statistics of the clean
    inputs and the first `keep` samples (for the unbounded-eps check).

    Args:
        attacks: Dict `name -> Attack`.
        epsilons: The sorted radii.
        norms: The norms of the noise baselines.
        checks: Bool, count the check statistics and keep samples.
        keep: Int, samples kept for the checks.
    """

    def __init__(
        self,
        attacks: Mapping[str, Attack],
        epsilons: Sequence[float],
        norms: Sequence[str],
        checks: bool,
        keep: int,
    ) -> None:
        self.attacks = attacks
        self.epsilons = epsilons
        self.checks = checks
        self.keep = keep
        size = len(epsilons)
        self.num_samples = self.clean_correct = 0
        self.correct = {name: np.zeros(size) for name in attacks}
        self.flipped = {name: np.zeros(size) for name in attacks}
        self.norm_sum = {name: np.zeros(size) for name in attacks}
        self.norm_max = {name: np.zeros(size) for name in attacks}
        self.seconds = dict.fromkeys(attacks, 0.0)
        # Per radius, the per-sample worst-case masks of the batches.
        self.worst: list[list[np.ndarray]] = [[] for _ in epsilons]
        # Per attack and radius, its per-sample robust masks (in the order
        # of the batches; an attack run over all samples adds one mask).
        self.survived: dict[str, list[list[np.ndarray]]] = {
            name: [[] for _ in epsilons] for name in attacks
        }
        self.noise_correct = {norm: np.zeros(size) for norm in norms}
        self.stats = dict.fromkeys(CHECK_STATS, 0)
        self.kept_x: list[np.ndarray] = []
        self.kept_y: list[np.ndarray] = []

    def add_clean(
        self, clean: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> np.ndarray:
        """Counts a batch's clean results; returns its correctness mask."""
        clean_ok = clean["correct"]
        self.num_samples += len(clean_ok)
        self.clean_correct += int(clean_ok.sum())
        if self.checks:
            for key in self.stats:
                self.stats[key] += int(clean[key].sum())
            take = min(self.keep - sum(map(len, self.kept_x)), len(x))
            if take > 0:
                self.kept_x.append(x[:take])
                self.kept_y.append(y[:take])
        return clean_ok

    def add_unattacked(self, i: int, clean_ok: np.ndarray) -> None:
        """Radius `i` is 0: every attack and noise leaves the clean result."""
        for name in self.attacks:
            self.correct[name][i] += clean_ok.sum()
            self.survived[name][i].append(np.asarray(clean_ok, bool))
        self.worst[i].append(np.asarray(clean_ok, bool))
        for counts in self.noise_correct.values():
            counts[i] += clean_ok.sum()

    def add_attacks(
        self,
        i: int,
        clean_ok: np.ndarray,
        results: Mapping[str, Mapping[str, np.ndarray]],
        seconds: Mapping[str, float],
    ) -> None:
        """Counts the per-sample `results` of a batch at radius `i`.

        `results` maps attack names to `{"correct", "norm"}` arrays; the
        attacks not in it (if any) are counted by `add_whole`.
        """
        survived, worst = robust_masks(
            clean_ok, {name: r["correct"] for name, r in results.items()}
        )
        for name, ok in survived.items():
            self._count(i, name, clean_ok, ok, results[name]["norm"])
            self.seconds[name] += seconds[name]
        self.worst[i].append(worst)

    def add_whole(
        self,
        i: int,
        name: str,
        clean_ok: np.ndarray,
        correct: np.ndarray,
        norm: np.ndarray,
        seconds: float,
    ) -> None:
        """Counts attack `name` at radius `i` on every sample at once.

        For an attack run over the whole data after the batches (AutoAttack's
        schedule): `clean_ok`, `correct` and `norm` cover all the samples, in
        the order of the batches.
        """
        survived, _ = robust_masks(clean_ok, {name: correct})
        self._count(i, name, clean_ok, survived[name], norm)
        self.seconds[name] += seconds
        worst = np.concatenate(self.worst[i])
        self.worst[i] = [np.logical_and(worst, survived[name])]

    def _count(
        self,
        i: int,
        name: str,
        clean_ok: np.ndarray,
        survived: np.ndarray,
        norm: np.ndarray,
    ) -> None:
        self.correct[name][i] += survived.sum()
        self.survived[name][i].append(np.asarray(survived, bool))
        self.flipped[name][i] += np.logical_and(clean_ok, ~survived).sum()
        self.norm_sum[name][i] += norm.sum()
        if len(norm):
            self.norm_max[name][i] = max(
                self.norm_max[name][i], float(norm.max())
            )

    def survived_masks(self, i: int) -> dict[str, np.ndarray]:
        """Per attack, its per-sample robust mask at radius `i` (all samples,
        in the order of the batches)."""
        return {
            name: np.concatenate(masks[i])
            for name, masks in self.survived.items()
        }

    def add_noise(
        self, i: int, norm: str, clean_ok: np.ndarray, correct: np.ndarray
    ) -> None:
        """Counts the noise baseline of `norm` at radius `i`."""
        self.noise_correct[norm][i] += np.logical_and(correct, clean_ok).sum()

    def report_fields(self) -> dict[str, Any]:
        """The `RobustnessReport` fields but the checks and warnings."""
        n = self.num_samples
        entries = {}
        for name, attack in self.attacks.items():
            entries[name] = {
                "class_name": type(attack).__name__,
                "config": attack_config(attack),
                "norm": attack.norm,
                # None for attacks that are not step-counted searches
                # (AutoAttack, Square): they join no single/multi-step check.
                "steps": attack_steps(attack),
                "accuracy": (self.correct[name] / n).tolist(),
                "success_rate": (
                    self.flipped[name] / max(self.clean_correct, 1)
                ).tolist(),
                "mean_norm": (self.norm_sum[name] / n).tolist(),
                "max_norm": self.norm_max[name].tolist(),
                "seconds": self.seconds[name],
            }
        return {
            "num_samples": n,
            "clean_accuracy": self.clean_correct / n,
            "epsilons": self.epsilons,
            "attacks": entries,
            "robust_accuracy": [
                sum(int(mask.sum()) for mask in masks) / n
                for masks in self.worst
            ],
        }

    def check_fields(self) -> dict[str, Any]:
        """The measured checks of the clean inputs and the noise baselines."""
        n, stats = self.num_samples, self.stats
        if stats["bounded"] == n and stats["sums_to_one"] == n:
            output_kind = "probabilities"
        elif stats["bounded"] == n:
            output_kind = "bounded"
        else:
            output_kind = "logits"
        return {
            "output_kind": output_kind,
            "zero_gradient_share": stats["zero_grad"] / n,
            "saturated_share": (
                stats["saturated"] / n
                if output_kind == "probabilities"
                else None
            ),
            "noise_accuracy": {
                norm: (counts / n).tolist()
                for norm, counts in self.noise_correct.items()
            },
        }
