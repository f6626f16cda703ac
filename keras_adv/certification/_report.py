"""`CertificationReport`: certified accuracy versus radius.

A plain container of per-sample certificates (predicted class, certified
radius, label) with the curve every certification paper plots: the share
of samples that are classified correctly and certified at radius `r` or
more, as a function of `r`. Text (`table()`), a JSON-serialisable dict
(`to_dict()`) and a plot (`plot(path)`, needs matplotlib).

The plot follows `keras_adv/evaluation/_plots.py`: matplotlib is optional
(the `plots` extra), imported lazily, object-oriented API on an Agg canvas
(no pyplot state, works headless). Evaluation sits above certification in
the package map, so the few lines that make the figure live here.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_adv import _figures
from keras_adv import _validation
from keras_adv._types import Array
from keras_adv.certification import _statistics

#: The norms of certified radii, with their axis labels.
NORMS = {
    "l2": "L2 radius",
    "linf": "L-inf radius",
    "latent": "whitened latent radius",
}


class CertificationReport:
    """Certified accuracy of a smoothed (or verified) classifier by radius.

    Certified accuracy at radius `r` is the share of the `num_samples`
    samples whose certified prediction is the true label with a certified
    radius of at least `r`; abstentions (class -1) and wrong predictions
    never count. At `r = 0` it is the accuracy of the certified classifier
    itself (for randomized smoothing, of `g`, with abstentions counted as
    errors). It is a lower bound on robust accuracy (with probability
    `1 - alpha` per sample, for smoothing); an attack gives the upper one.

    Args:
        predictions: Int array `(num_samples,)`, the certified classes
            (-1 for an abstention), e.g. from `SmoothedClassifier.certify`.
        radii: Float array `(num_samples,)` >= 0, the certified radii.
        y: Labels: class ids `(num_samples,)` or `(num_samples, 1)`, or
            one-hot rows.
        norm: The radii's norm, `"l2"`, `"linf"` or `"latent"` (the
            whitened latent L2 radius of a learned perturbation set, from
            `LatentSmoothedClassifier`). Defaults to `"l2"`.
        settings: Optional dict of the certifier's settings (e.g.
            `SmoothedClassifier.get_config()` with `n0`, `n`, `alpha`),
            kept in `to_dict()`. For `"latent"`, `set_radius` (the learned
            set's radius) and `latent_dim` add the share of the set's
            radius and of the prior's mass to `table()`. Defaults to
            `None`.

    Attributes:
        num_samples: Int.
        predictions: Int64 array.
        radii: Float64 array.
        labels: Int64 array of class ids.
        correct: Bool array, prediction equals the label.
        abstention_rate: Float, share of abstentions.

    Example:

    >>> import numpy as np
    >>> from keras_adv.certification import CertificationReport
    >>> report = CertificationReport(predictions=[1, 0, -1, 2],
    ...                              radii=[0.5, 1.2, 0.0, 0.8],
    ...                              y=[1, 0, 1, 0])
    >>> report.certified_accuracy(0.0)
    0.5
    >>> report.certified_accuracy([0.5, 1.0, 2.0])
    [0.5, 0.25, 0.0]

    Reference:
        Cohen, Rosenfeld and Kolter, "Certified Adversarial Robustness via
        Randomized Smoothing", ICML 2019,
        [arXiv:1902.02918](https://arxiv.org/abs/1902.02918) (Figure 7).
    """

    def __init__(
        self,
        predictions: Array | Sequence[int],
        radii: Array | Sequence[float],
        y: Array | Sequence[int],
        norm: str = "l2",
        settings: dict[str, Any] | None = None,
    ) -> None:
        predictions = np.asarray(predictions)
        if predictions.ndim != 1 or predictions.dtype.kind not in "iu":
            raise ValueError(
                _validation.invalid(
                    "predictions",
                    "int class ids of shape (num_samples,)",
                    f"dtype {predictions.dtype}, shape {predictions.shape}",
                )
            )
        if predictions.size and predictions.min() < -1:
            raise ValueError(
                _validation.invalid(
                    "predictions", "class ids >= 0 or -1 (abstain)", "< -1"
                )
            )
        radii = np.asarray(radii, dtype="float64")
        if radii.shape != predictions.shape:
            raise ValueError(
                _validation.invalid(
                    "radii", f"shape {predictions.shape}", radii.shape
                )
            )
        if not np.all(np.isfinite(radii)) or np.any(radii < 0.0):
            raise ValueError(
                _validation.invalid("radii", "finite radii >= 0", radii[:5])
            )
        labels = _validation.class_ids(y)
        if labels.shape != predictions.shape:
            raise ValueError(
                _validation.invalid(
                    "y", f"{predictions.size} labels", labels.shape[0]
                )
            )
        self.norm = _validation.check_choice("norm", norm, tuple(NORMS))
        self.predictions = predictions.astype("int64")
        self.radii = radii
        self.labels = labels
        self.correct = self.predictions == labels
        self.num_samples = int(predictions.size)
        self.abstention_rate = _share(self.predictions == -1)
        self.settings = dict(settings or {})

    def certified_accuracy(
        self, radius: float | Sequence[float]
    ) -> float | list[float]:
        """Share of samples correct and certified at `radius` or more.

        Args:
            radius: A float >= 0, or a sequence of them.

        Returns:
            A float, or a list of floats aligned with `radius`.
        """
        if np.ndim(radius) == 0:
            return self._certified_at(radius)
        radii = np.asarray(radius, dtype="float64").reshape(-1).tolist()
        return [self._certified_at(r) for r in radii]

    def _certified_at(self, radius: Any) -> float:
        radius = _validation.check_number("radius", radius, minimum=0.0)
        return _share(self.correct & (self.radii >= radius))

    def curve(
        self, radii: Sequence[float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Certified accuracy on a grid of radii.

        Args:
            radii: Sequence of radii, or None for the exact step curve: 0
                and every distinct certified radius of a correct sample.

        Returns:
            `(radii, accuracy)`, two float64 arrays of the same length.
        """
        if radii is None:
            grid = np.unique(np.append(self.radii[self.correct], 0.0))
        else:
            grid = np.asarray(radii, dtype="float64").reshape(-1)
        return grid, np.asarray(self.certified_accuracy(list(grid)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; `from_dict` rebuilds the report."""
        return {
            "predictions": self.predictions.tolist(),
            "radii": self.radii.tolist(),
            "labels": self.labels.tolist(),
            "norm": self.norm,
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "CertificationReport":
        """The report of `to_dict()`."""
        return cls(
            config["predictions"],
            config["radii"],
            config["labels"],
            norm=config.get("norm", "l2"),
            settings=config.get("settings"),
        )

    def table(self, radii: Sequence[float] | None = None) -> str:
        """Plain-text table of certified accuracy at `radii`.

        Args:
            radii: Sequence of radii, or None for five radii from 0 to the
                largest certified radius of a correct sample (rounded down
                to 0.01), and the set's radius of a latent report.

        A latent report whose settings hold `set_radius` adds the radius
        as a share of the set's (`of set`); with `latent_dim`, the share
        of the prior's draws `u ~ N(0, I)` within it (`prior mass`).
        """
        set_radius = self._latent_setting("set_radius")
        latent_dim = self._latent_setting("latent_dim")
        if radii is None:
            largest = float(np.max(self.radii[self.correct], initial=0.0))
            grid = np.floor(np.linspace(0.0, largest, 5) * 100.0) / 100.0
            if set_radius is not None:
                grid = np.append(grid, set_radius)
            radii = np.unique(grid).tolist()
        header = f"{'radius':>10}  {'certified':>9}"
        if set_radius is not None:
            header += f"  {'of set':>7}"
        if latent_dim is not None:
            header += f"  {'prior mass':>10}"
        lines = [
            f"certified accuracy ({NORMS[self.norm]}), "
            f"{self.num_samples} samples, "
            f"{100.0 * self.abstention_rate:.1f}% abstained",
            header,
        ]
        for r in radii:
            accuracy = self._certified_at(float(r))
            line = f"{float(r):10.3f}  {100.0 * accuracy:8.1f}%"
            if set_radius is not None and set_radius > 0:
                line += f"  {100.0 * float(r) / set_radius:6.1f}%"
            elif set_radius is not None:
                line += f"  {'-':>7}"
            if latent_dim is not None:
                mass = _statistics.gaussian_mass_within(r, int(latent_dim))
                line += f"  {float(mass):10.3g}"
            lines.append(line)
        return "\n".join(lines)

    def _latent_setting(self, key: str) -> float | None:
        """A number from the settings of a latent report, else None."""
        value = self.settings.get(key) if self.norm == "latent" else None
        return None if value is None else float(value)

    def plot(self, path: str, title: str | None = None) -> str:
        """Writes the certified-accuracy-versus-radius curve to a PNG.

        Args:
            path: Output PNG path.
            title: Optional title.

        Returns:
            `path`.

        Raises:
            ImportError: if matplotlib is not installed.
        """
        fig = _figures.figure(6.4, 4.4)
        ax = fig.add_subplot(1, 1, 1)
        grid, accuracy = self.curve()
        set_radius = self._latent_setting("set_radius")
        right = max(float(grid[-1]) * 1.1, (set_radius or 0.0) * 1.1, 1e-3)
        # Certified at r means radius >= r: the curve takes its value at
        # each certified radius on the interval just left of it.
        ax.step(
            np.append(grid, right),
            100.0 * np.append(accuracy, 0.0),
            where="pre",
            label="certified",
        )
        if set_radius is not None:
            ax.axvline(set_radius, color="0.5", ls="--", label="set radius")
        ax.set_xlim(0.0, right)
        ax.set_ylim(0.0, 100.0)
        ax.set_xlabel(NORMS[self.norm])
        ax.set_ylabel("certified accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right")
        if title:
            ax.set_title(title)
        fig.tight_layout()
        fig.savefig(path)
        return path

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"CertificationReport(num_samples={self.num_samples}, "
            f"certified_accuracy(0)={self.certified_accuracy(0.0):.3f}, "
            f"norm={self.norm!r})"
        )


def _share(mask: np.ndarray) -> float:
    return float(np.mean(mask)) if mask.size else 0.0
