"""`RobustnessReport`: the result of `evaluate_robustness`.

A plain container of numbers with four views: a plain-text table for
terminals (`table()`), Markdown for files (`to_markdown()`), a
JSON-serialisable dict (`to_dict()` / `to_json()`) and an
accuracy-versus-eps plot (`plot(path)`, needs matplotlib). Certified
figures (lower bounds) sit beside the attacks (upper bounds); `bracket`
words the pair.
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


#: The definition printed under every table that shows certified rows.
CERTIFIED = (
    "certified: share of samples proven robust everywhere in the ball, a "
    "lower bound (smoothing: of the smoothed classifier)"
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
        certified: Dict name -> dict with keys `"method"` (`"ibp"`,
            `"crown_ibp"`, `"crown"` or `"smoothing"`), `"norm"`,
            `"settings"` (smoothing: `sigma`, `n0`, `n`, `alpha`,
            `abstention_rate`), `"seconds"` and `"accuracy"`, a list
            aligned with `epsilons`: the share of samples certified at each
            eps (empty without `evaluate_robustness(certify=...)`). Bound
            methods also hold `"broken"`, per eps the verified samples an
            attack broke (non-zero only under mixed precision; they do not
            count as certified).
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
    ...     robust_accuracy=[0.9, 0.5],
    ...     certified={"crown_ibp": {"method": "crown_ibp", "norm": "linf",
    ...                              "accuracy": [0.9, 0.3], "seconds": 0.1,
    ...                              "settings": {}, "broken": [0, 0]}})
    >>> report.accuracy("fgsm", 0.1)
    0.5
    >>> report.certified_accuracy(0.1)
    0.3
    >>> print(report.bracket(0.1))  # doctest: +NORMALIZE_WHITESPACE
    robust accuracy at eps 0.1 (linf) lies between 30.0% (certified,
    crown_ibp) and 50.0% (fgsm).

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
        certified: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.num_samples = int(num_samples)
        self.clean_accuracy = float(clean_accuracy)
        self.epsilons = [float(e) for e in epsilons]
        self.attacks = dict(attacks)
        self.robust_accuracy = [float(a) for a in robust_accuracy]
        self.checks = dict(checks or {})
        self.warnings = list(warnings or [])
        self.certified = dict(certified or {})

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

    def certified_accuracy(
        self, eps: float, method: str | None = None
    ) -> float:
        """Certified accuracy at radius `eps`: a lower bound.

        Args:
            eps: One of the report's radii.
            method: The name of a certificate in `certified` (`"ibp"`,
                `"crown_ibp"`, `"crown"`, `"smoothing"`, ...), or None for
                the largest figure of the bound methods (each a lower
                bound of the model's robust accuracy), or of smoothing in
                a report without bound methods. Defaults to `None`.
        """
        return self.certified[self._certificate(eps, method)]["accuracy"][
            self._eps_index(eps)
        ]

    def _certificate(self, eps: float, method: str | None) -> str:
        if not self.certified:
            raise ValueError(
                "The report has no certified figures: evaluate with "
                "evaluate_robustness(..., certify='crown_ibp') (or 'ibp', "
                "'crown', a SmoothedClassifier)."
            )
        if method is not None:
            if method not in self.certified:
                raise ValueError(
                    f"Invalid value received for argument `method`. "
                    f"Expected one of {sorted(self.certified)} or None. "
                    f"Received: method={method!r}"
                )
            return method
        bounds = [n for n, e in self.certified.items() if _bound(e)]
        i = self._eps_index(eps)
        return max(
            bounds or list(self.certified),
            key=lambda name: self.certified[name]["accuracy"][i],
        )

    def bracket(self, eps: float) -> str:
        """One sentence: robust accuracy at `eps` between proof and attack.

        "robust accuracy at eps 0.3 (linf) lies between 71.0% (certified,
        crown_ibp) and 86.9% (autoattack)": the largest certified figure of
        the bound methods and the worst case over the attacks (named by
        the attack that reaches it, if one does alone). Smoothing
        certificates follow in their own sentence: they certify the
        smoothed classifier, not the model the attacks ran on.

        Args:
            eps: One of the report's radii.
        """
        i = self._eps_index(eps)
        norm = next(iter(self.attacks.values()))["norm"]
        upper = self.robust_accuracy[i]
        labels = self._labels(norm=False)
        reaching = [
            labels[name]
            for name, entry in self.attacks.items()
            if entry["accuracy"][i] == upper
        ]
        if len(reaching) == 1:
            attack = reaching[0]
        else:
            attack = f"worst case of {', '.join(labels.values())}"
        bounds = [n for n, e in self.certified.items() if _bound(e)]
        where = f"robust accuracy at eps {self.epsilons[i]:g} ({norm})"
        if bounds:
            best = self._certificate(eps, None)
            lower = self.certified[best]["accuracy"][i]
            if lower == upper:
                text = (
                    f"{where} is exactly {100 * lower:.1f}%: certified "
                    f"({best}) and reached by an attack ({attack})."
                )
            else:
                text = (
                    f"{where} lies between {100 * lower:.1f}% (certified, "
                    f"{best}) and {100 * upper:.1f}% ({attack})."
                )
        else:
            text = (
                f"{where} is at most {100 * upper:.1f}% ({attack}); no "
                "certificate of the model gives a lower bound."
            )
        for name, entry in self.certified.items():
            if not _bound(entry):
                text += (
                    f" The smoothed classifier ({name}, sigma "
                    f"{entry['settings']['sigma']:g}) is certified on "
                    f"{100 * entry['accuracy'][i]:.1f}% at L2 radius "
                    f"{self.epsilons[i]:g} (a figure of that classifier; "
                    "the attacks ran on the model)."
                )
        return text

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
            "certified": {
                name: dict(entry) for name, entry in self.certified.items()
            },
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

    def _labels(self, norm: bool = True) -> dict[str, str]:
        """Dict name -> label of each attack in tables: `pgd-20 (linf)`."""
        return {
            name: attack_label(name, e.get("class_name"), e.get("steps"))
            + (f" ({e['norm']})" if norm else "")
            for name, e in self.attacks.items()
        }

    def _certified_labels(self) -> dict[str, str]:
        """Dict name -> label of each certificate: `certified ibp (linf)`."""
        labels = {}
        for name, entry in self.certified.items():
            sigma = entry.get("settings", {}).get("sigma")
            detail = "" if sigma is None else f" sigma={sigma:g}"
            labels[name] = f"certified {name}{detail} ({entry['norm']})"
        return labels

    def _bracket_lines(self) -> list[str]:
        """A bracket per nonzero eps, when there are certified figures."""
        if not self.certified:
            return []
        return [self.bracket(e) for e in self.epsilons if e > 0]

    def table(self) -> str:
        """A plain-text table for terminals (aligned columns, no markup).

        Accuracy under each attack (named with its steps: `pgd-20 (linf)`)
        and in the worst case, success rates, perturbation norms, times
        and the gradient-masking checks. `to_markdown()` gives the same
        figures for files.
        """
        labels = self._labels()
        certified = self._certified_labels()
        names = list(self.attacks)
        label_width = max(
            [12]
            + [len(label) + 2 for label in labels.values()]
            + [len(label) + 2 for label in certified.values()]
        )
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
        for name, label in certified.items():
            lines.append(
                label.ljust(label_width)
                + "".join(
                    f"{_pct(a):>9}" for a in self.certified[name]["accuracy"]
                )
            )
        if certified:
            lines.append(CERTIFIED)
            lines += self._broken_lines()
            lines += ["", "Robust accuracy bracket", *self._bracket_lines()]
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
        lines += [
            "",
            "Time per attack" + (" and certificate" * bool(certified)),
        ]
        for name in names:
            lines.append(
                labels[name].ljust(label_width)
                + f"{self.attacks[name]['seconds']:.2f} s"
            )
        for name, label in certified.items():
            lines.append(
                label.ljust(label_width)
                + f"{self.certified[name]['seconds']:.2f} s"
            )
        lines.append("")
        lines += self._check_lines()
        return "\n".join(lines)

    def _broken_lines(self) -> list[str]:
        lines = []
        for name, entry in self.certified.items():
            counts = ", ".join(
                f"{count} at eps {eps:g}"
                for count, eps in zip(
                    entry.get("broken", []), self.epsilons, strict=False
                )
                if count
            )
            if counts:
                lines.append(
                    f"  ! {name}: verified samples broken by an attack, not "
                    f"counted (mixed precision): {counts}"
                )
        return lines

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
        lines.append(f"| **worst case** | {cells} | |")
        for name, label in self._certified_labels().items():
            entry = self.certified[name]
            cells = " | ".join(f"{100 * a:.1f}%" for a in entry["accuracy"])
            lines.append(f"| {label} | {cells} | {entry['seconds']:.1f} |")
        lines += ["", WORST_CASE, ""]
        if self.certified:
            lines += [CERTIFIED, *self._broken_lines(), ""]
            lines += [f"- {line}" for line in self._bracket_lines()] + [""]
        lines += self._check_lines()
        text = "\n".join(lines)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def plot(self, path: str, title: str | None = None) -> str:
        """Writes accuracy-versus-eps curves to a PNG file at `path`.

        One line per attack, the worst case in bold, a dashed line per
        certificate and the bracket between the best bound certificate and
        the worst case shaded. Needs matplotlib
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
            f"certified={list(self.certified)}, "
            f"warnings={len(self.warnings)})"
        )


def _bound(entry: Mapping[str, Any]) -> bool:
    """A certificate of the model itself (not of a smoothed classifier)."""
    return entry.get("method") != "smoothing"
