"""`RobustnessReport`: the result of `evaluate_robustness`.

A plain container of numbers with four views: a plain-text table for
terminals (`table()`), Markdown for files (`to_markdown()`), a
JSON-serialisable dict (`to_dict()` / `to_json()`) and an
accuracy-versus-eps plot (`plot(path)`, needs matplotlib).
"""

import json
import os
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from keras_adv.evaluation import _plots as plots
from keras_adv.evaluation._attack_set import attack_label

_ReportT = TypeVar("_ReportT", bound="RobustnessReport")

#: The definition printed under every table that shows a worst case.
WORST_CASE = (
    "worst case: a sample counts as robust only if it resists every "
    "attack above"
)


def _pct(value: float) -> str:
    return f"{100.0 * value:6.1f}%"


class RobustnessReport:
    """Robust accuracy of a model under a set of attacks and radii.

    Built by `keras_adv.evaluation.evaluate_robustness`; rebuild one from
    its dict with `RobustnessReport.from_dict(report.to_dict())`.

    Definitions (all over the `num_samples` evaluated samples):

    * accuracy under attack at eps: share of samples that are classified
      correctly both clean and after the attack (a sample the model already
      gets wrong never counts as robust);
    * worst-case robust accuracy at eps: share of samples that survive
      every attack at that eps;
    * attack success rate: share of the correctly classified clean samples
      whose prediction the attack changes to a wrong class;
    * perturbation norm: `||x_adv - x||` in the attack's norm, mean and max
      over samples;
    * seconds: wall-clock time spent in the attack (all batches and radii;
      the one-time trace of the evaluation graph is not counted).

    Attributes:
        num_samples: Int, number of evaluated samples.
        clean_accuracy: Float, accuracy on the clean inputs.
        epsilons: List of floats, the radii (ascending).
        attacks: Dict name -> dict with keys `"config"` (the attack's
            `get_config()`), `"class_name"`, `"norm"`, and lists aligned
            with `epsilons`: `"accuracy"`, `"success_rate"`, `"mean_norm"`,
            `"max_norm"`; plus `"seconds"`.
        robust_accuracy: List of floats aligned with `epsilons`, the
            worst case over all attacks.
        checks: Dict of the measurements behind the gradient-masking
            checks (empty if the checks were switched off).
        warnings: List of strings, one per failed gradient-masking check.
            Empty means no sign of gradient masking was found (which does
            not prove robustness).

    Example:

    >>> from keras_adv.evaluation import RobustnessReport
    >>> report = RobustnessReport(
    ...     num_samples=10, clean_accuracy=0.9, epsilons=[0.0, 0.1],
    ...     attacks={"fgsm": {"class_name": "FGSM", "norm": "linf",
    ...                       "config": {}, "accuracy": [0.9, 0.5],
    ...                       "success_rate": [0.0, 0.444],
    ...                       "mean_norm": [0.0, 0.1],
    ...                       "max_norm": [0.0, 0.1], "seconds": 0.2}},
    ...     robust_accuracy=[0.9, 0.5])
    >>> report.accuracy("fgsm", 0.1)
    0.5

    Reference:
        Carlini et al., "On Evaluating Adversarial Robustness", 2019,
        [arXiv:1902.06705](https://arxiv.org/abs/1902.06705).
    """

    def __init__(
        self,
        num_samples: int,
        clean_accuracy: float,
        epsilons: Sequence[float],
        attacks: Mapping[str, dict[str, Any]],
        robust_accuracy: Sequence[float],
        checks: Mapping[str, Any] | None = None,
        warnings: Sequence[str] | None = None,
    ) -> None:
        self.num_samples = int(num_samples)
        self.clean_accuracy = float(clean_accuracy)
        self.epsilons = [float(e) for e in epsilons]
        self.attacks = dict(attacks)
        self.robust_accuracy = [float(a) for a in robust_accuracy]
        self.checks = dict(checks or {})
        self.warnings = list(warnings or [])

    # ------------------------------------------------------------ access
    def _eps_index(self, eps: float) -> int:
        for i, e in enumerate(self.epsilons):
            if abs(e - float(eps)) <= 1e-9 * max(1.0, abs(e)):
                return i
        raise ValueError(
            f"Invalid value received for argument `eps`. Expected one of "
            f"{self.epsilons}. Received: eps={eps!r}"
        )

    def accuracy(self, attack: str, eps: float) -> float:
        """Accuracy under the attack named `attack` at radius `eps`."""
        if attack not in self.attacks:
            raise ValueError(
                f"Invalid value received for argument `attack`. Expected "
                f"one of {sorted(self.attacks)}. Received: attack={attack!r}"
            )
        return self.attacks[attack]["accuracy"][self._eps_index(eps)]

    def worst_case(self, eps: float) -> float:
        """Worst-case robust accuracy over all attacks at radius `eps`."""
        return self.robust_accuracy[self._eps_index(eps)]

    # ------------------------------------------------------------- views
    def to_dict(self) -> dict[str, Any]:
        """Returns the report as a JSON-serialisable dict."""
        return {
            "num_samples": self.num_samples,
            "clean_accuracy": self.clean_accuracy,
            "epsilons": list(self.epsilons),
            "attacks": {
                name: dict(entry) for name, entry in self.attacks.items()
            },
            "robust_accuracy": list(self.robust_accuracy),
            "checks": dict(self.checks),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls: type[_ReportT], config: Mapping[str, Any]) -> _ReportT:
        """Rebuilds a report from `to_dict()` output."""
        return cls(**config)

    def to_json(
        self, path: str | os.PathLike[str] | None = None, indent: int | None = 2
    ) -> str:
        """Returns the report as a JSON string; also writes it to `path`."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def _labels(self) -> dict[str, str]:
        """Dict name -> label of each attack in tables: `pgd-20 (linf)`."""
        return {
            name: f"{attack_label(name, e.get('class_name'), e.get('steps'))}"
            f" ({e['norm']})"
            for name, e in self.attacks.items()
        }

    def table(self) -> str:
        """A plain-text table for terminals (aligned columns, no markup).

        Accuracy under each attack (named with its steps: `pgd-20 (linf)`)
        and in the worst case, success rates, perturbation norms, times
        and the gradient-masking checks. `to_markdown()` gives the same
        figures for files.
        """
        labels = self._labels()
        names = list(self.attacks)
        label_width = max([12] + [len(label) + 2 for label in labels.values()])
        header = "eps".ljust(label_width) + "".join(
            f"{e:>9.3g}" for e in self.epsilons
        )
        lines = [
            f"Robustness report: {self.num_samples} samples, clean "
            f"accuracy {100.0 * self.clean_accuracy:.1f}%",
            "",
            "Accuracy under attack",
            header,
        ]
        for name in names:
            lines.append(
                labels[name].ljust(label_width)
                + "".join(
                    f"{_pct(a):>9}" for a in self.attacks[name]["accuracy"]
                )
            )
        lines.append(
            "worst case".ljust(label_width)
            + "".join(f"{_pct(a):>9}" for a in self.robust_accuracy)
        )
        lines.append(WORST_CASE)
        lines += ["", "Attack success rate (share of correct samples flipped)"]
        lines.append(header)
        for name in names:
            lines.append(
                labels[name].ljust(label_width)
                + "".join(
                    f"{_pct(a):>9}" for a in self.attacks[name]["success_rate"]
                )
            )
        lines += ["", "Perturbation norm, mean / max"]
        lines.append(
            "eps".ljust(label_width)
            + "".join(f"{e:>14.3g}" for e in self.epsilons)
        )
        for name in names:
            entry = self.attacks[name]
            cells = "".join(
                f"{m:.3g}/{x:.3g}".rjust(14)
                for m, x in zip(entry["mean_norm"], entry["max_norm"])
            )
            lines.append(labels[name].ljust(label_width) + cells)
        lines += ["", "Time per attack"]
        for name in names:
            lines.append(
                labels[name].ljust(label_width)
                + f"{self.attacks[name]['seconds']:.2f} s"
            )
        lines.append("")
        lines += self._check_lines()
        return "\n".join(lines)

    def _check_lines(self) -> list[str]:
        if not self.checks:
            return ["Gradient-masking checks: not run"]
        if self.warnings:
            return [
                f"Gradient-masking checks: {len(self.warnings)} WARNING(S)",
                *(f"  ! {w}" for w in self.warnings),
            ]
        return ["Gradient-masking checks: passed"]

    def to_markdown(self, path: str | os.PathLike[str] | None = None) -> str:
        """The accuracies as Markdown, for files and TensorBoard's text tab.

        One table (a row per attack and the worst case in bold, a column
        per eps), the definition of the worst case and the checks.

        Args:
            path: Optional path of a `.md` file to write. Defaults to
                `None`.

        Returns:
            The Markdown text.
        """
        labels = self._labels()
        eps = " | ".join(f"eps {e:g}" for e in self.epsilons)
        lines = [
            f"Robustness report: {self.num_samples} samples, clean "
            f"accuracy {100.0 * self.clean_accuracy:.1f}%",
            "",
            f"| attack | {eps} | seconds |",
            "|---|" + "---|" * (len(self.epsilons) + 1),
        ]
        for name, entry in self.attacks.items():
            cells = " | ".join(f"{100 * a:.1f}%" for a in entry["accuracy"])
            lines.append(
                f"| {labels[name]} | {cells} | {entry['seconds']:.1f} |"
            )
        cells = " | ".join(f"**{100 * a:.1f}%**" for a in self.robust_accuracy)
        lines += [f"| **worst case** | {cells} | |", "", WORST_CASE, ""]
        lines += self._check_lines()
        text = "\n".join(lines)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def plot(self, path: str, title: str | None = None) -> str:
        """Writes accuracy-versus-eps curves to a PNG file at `path`.

        One line per attack, the worst case in bold. Needs matplotlib
        (`pip install "keras-adv[plots]"`).

        Args:
            path: Path of the PNG file to write.
            title: Optional title. Defaults to a summary of the report.

        Returns:
            `path`.

        Raises:
            ImportError: if matplotlib is not installed.
        """
        return plots.plot_accuracy_curves(self, path, title=title)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"RobustnessReport(num_samples={self.num_samples}, "
            f"clean_accuracy={self.clean_accuracy:.4f}, "
            f"epsilons={self.epsilons}, attacks={list(self.attacks)}, "
            f"warnings={len(self.warnings)})"
        )
