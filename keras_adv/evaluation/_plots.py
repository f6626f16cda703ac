"""Every picture of keras_adv: accuracy curves and all image grids.

One tiling function (`tile_images`), one annotated grid of clean inputs,
adversarial inputs and perturbations (`robustness_grid`, with
`adversarial_grid` its one-attack form, used by `RobustnessMonitor`) and
a square sample grid (`image_grid`, used by `GANMonitor`).

matplotlib is an optional dependency (the `plots` extra). It is imported
lazily and only the object-oriented API is used (no pyplot state, no GUI
backend), so plotting works headless and from callbacks; without it the
grids are tiled without text.
"""

from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from keras_adv import _figures
from keras_adv._types import ValueRange

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from keras_adv.evaluation._report import RobustnessReport

_figure = _figures.figure
has_matplotlib = _figures.has_matplotlib


def _agg_figure(width: float, height: float, dpi: int = 80) -> "Figure | None":
    """A Figure with an Agg canvas, or None without matplotlib."""
    if not has_matplotlib():
        return None
    try:
        return _figure(width, height, dpi=dpi)
    except ImportError:
        return None


def plot_accuracy_curves(
    report: "RobustnessReport", path: str, title: str | None = None
) -> str:
    """Writes accuracy-vs-eps curves of a `RobustnessReport` to a PNG.

    Args:
        report: A `RobustnessReport`.
        path: Output PNG path.
        title: Optional title.

    Returns:
        `path`.

    Raises:
        ImportError: if matplotlib is not installed.
    """
    fig = _figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    eps = report.epsilons
    markers = "osd^v<>p*h"
    for i, (name, entry) in enumerate(report.attacks.items()):
        ax.plot(
            eps,
            [100.0 * a for a in entry["accuracy"]],
            marker=markers[i % len(markers)],
            label=_curve_label(name, entry),
        )
    ax.plot(
        eps,
        [100.0 * a for a in report.robust_accuracy],
        color="black",
        linewidth=2.5,
        linestyle="--",
        label="worst case (all attacks)",
    )
    _certified_curves(ax, report)
    ax.set_xlabel("eps (perturbation radius)")
    ax.set_ylabel(
        "accuracy under attack / certified (%)"
        if report.certified
        else "accuracy under attack (%)"
    )
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    if title is None:
        title = (
            f"Robust accuracy, {report.num_samples} samples "
            f"(clean {100.0 * report.clean_accuracy:.1f}%)"
        )
    ax.set_title(title)
    if report.warnings:
        fig.text(
            0.01,
            0.01,
            f"{len(report.warnings)} gradient-masking warning(s): see report",
            color="red",
            fontsize=8,
        )
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _certified_curves(ax: Any, report: "RobustnessReport") -> None:
    """Dashed certified curves; the bracket of the best bound shaded."""
    eps = report.epsilons
    bounds = []
    for name, entry in report.certified.items():
        accuracy = [100.0 * a for a in entry["accuracy"]]
        smoothing = entry["method"] == "smoothing"
        if not smoothing:
            bounds.append(accuracy)
        sigma = entry.get("settings", {}).get("sigma")
        what = "smoothed classifier, " if smoothing else ""
        detail = f", sigma {sigma:g}" if smoothing else ""
        ax.plot(
            eps,
            accuracy,
            linestyle="--",
            marker="x",
            label=f"certified: {what}{name} ({entry['norm']}{detail})",
        )
    if bounds:
        ax.fill_between(
            eps,
            np.max(bounds, axis=0),
            [100.0 * a for a in report.robust_accuracy],
            color="gray",
            alpha=0.15,
            label="robust accuracy lies here",
        )


def _curve_label(name: str, entry: Mapping[str, Any]) -> str:
    steps = entry.get("steps") or 1
    detail = entry["norm"] if steps <= 1 else f"{entry['norm']}, {steps} steps"
    return f"{name} ({detail})"


def to_display(images: ArrayLike, value_range: ValueRange) -> np.ndarray:
    """Maps images to float [0, 1] with shape (n, h, w, c), c in {1, 3}."""
    low, high = value_range
    images = (np.asarray(images, "float32") - low) / (high - low)
    images = np.clip(images, 0.0, 1.0)
    if images.ndim == 3:
        images = images[..., None]
    return images


def to_uint8(image: np.ndarray, rgb: bool = False) -> np.ndarray:
    """Float values in [0, 1] to uint8 0..255 (truncated, like matplotlib).

    With `rgb=True` a single channel is repeated three times.
    """
    image = (255.0 * np.clip(image, 0.0, 1.0)).astype("uint8")
    if rgb and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image


def scale_perturbation(delta: ArrayLike) -> np.ndarray:
    """Maps perturbations to [0, 1] for viewing: 0.5 is no change.

    Each image is divided by twice its own largest absolute value, so the
    strongest pixel change is black (-) or white (+).
    """
    delta = np.asarray(delta, "float32")
    axes = tuple(range(1, delta.ndim))
    peak = np.max(np.abs(delta), axis=axes, keepdims=True)
    return 0.5 + delta / (2.0 * np.maximum(peak, 1e-12))


def is_image_batch(x: ArrayLike) -> bool:
    """True for (n, h, w) or (n, h, w, c) with c in {1, 3}."""
    shape = np.shape(x)
    return len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3))


def tile_images(rows: Sequence[np.ndarray], gap: int = 2) -> np.ndarray:
    """Stacks rows of `(n, h, w, c)` images into one float array with gaps.

    The one tiling function of keras_adv. No text; the gaps are white
    (1.0). Returns `(rows*(h+gap)+gap, n*(w+gap)+gap, c)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.evaluation import _plots as plots
    >>> plots.tile_images([np.zeros((3, 4, 4, 1))] * 2, gap=1).shape
    (11, 16, 1)
    """
    n, h, w, c = rows[0].shape
    grid = np.ones(
        (len(rows) * (h + gap) + gap, n * (w + gap) + gap, c), "float32"
    )
    for r, row in enumerate(rows):
        for i in range(n):
            top = gap + r * (h + gap)
            left = gap + i * (w + gap)
            grid[top : top + h, left : left + w] = row[i]
    return grid


def image_grid(
    images: ArrayLike,
    rows: int,
    value_range: ValueRange = (0.0, 1.0),
) -> np.ndarray:
    """Tiles `rows * rows` images `(n, h, w, c)` into one uint8 image.

    Row-major, without gaps (a grid of generated samples).

    Args:
        images: Array `(n, h, w, c)` with `n >= rows * rows`.
        rows: Int, images per row and column.
        value_range: Pair `(low, high)` of the pixel values.

    Returns:
        Uint8 array `(rows * h, rows * w, c)`.
    """
    images = to_display(np.asarray(images)[: rows * rows], value_range)
    grid = tile_images(np.split(images, rows), gap=0)
    return to_uint8(grid)


def robustness_grid(
    x: ArrayLike,
    y: Sequence[int] | np.ndarray,
    pred_clean: Sequence[int] | np.ndarray,
    adversarial: Mapping[str, tuple[ArrayLike, Sequence[int] | np.ndarray]],
    value_range: ValueRange = (0.0, 1.0),
    title: str | None = None,
) -> np.ndarray:
    """Renders clean inputs and, per attack, adversarials and perturbations.

    The one annotated grid of keras_adv. One column per sample. Row 1:
    the clean inputs, titled with the true class and the prediction
    (orange when wrong). Then, for every attack, a row of adversarial
    inputs titled with the new prediction (red and "fooled" when it
    differs from the true class, green otherwise) and a row of
    perturbations `x_adv - x`, each scaled to its own largest change
    (red: pixel brightened, blue: darkened, white: unchanged; for RGB
    images gray is unchanged). Without matplotlib, the rows are tiled
    without labels (perturbations gray = unchanged).

    Args:
        x: Clean images `(n, h, w[, c])`, `c` in {1, 3}.
        y: Int true labels `(n,)`.
        pred_clean: Int predictions on `x`.
        adversarial: Dict `label -> (x_adv, pred_adv)`; `label` names the
            attack in the row headers (e.g. `"pgd\\nlinf eps=0.3"`).
        value_range: Pair `(low, high)` of the inputs.
        title: Optional title above the grid.

    Returns:
        A uint8 array `(height, width, 3)`.
    """
    clean = to_display(x, value_range)
    n = clean.shape[0]
    rows = [clean]
    for x_adv, _ in adversarial.values():
        delta = np.asarray(x_adv, "float32") - np.asarray(x, "float32")
        rows.append(to_display(x_adv, value_range))
        rows.append(scale_perturbation(delta.reshape(clean.shape)))
    top = 0.55 if title else 0.1
    fig = _agg_figure(1.3 + 1.05 * n, top + 1.3 * len(rows))
    if fig is None:
        return to_uint8(tile_images(rows), rgb=True)
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, row in enumerate(rows):
        for i in range(n):
            ax, image = axes[r, i], row[i]
            if r and r % 2 == 0 and image.shape[-1] == 1:
                # Perturbation: [0, 1] back to [-1, 1] on a diverging map.
                ax.imshow(2 * image[..., 0] - 1, cmap="bwr", vmin=-1, vmax=1)
            elif image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                ax.imshow(image, vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
    for i in range(n):
        ok = int(pred_clean[i]) == int(y[i])
        axes[0, i].set_title(
            f"true {int(y[i])}\npred {int(pred_clean[i])}",
            fontsize=9,
            color="black" if ok else "darkorange",
        )
    axes[0, 0].set_ylabel("clean", fontsize=9)
    for a, (label, (_, pred_adv)) in enumerate(adversarial.items()):
        adv_row = 1 + 2 * a
        for i in range(n):
            if int(pred_clean[i]) != int(y[i]):
                note, color = "\n(wrong clean)", "darkorange"
            elif int(pred_adv[i]) != int(y[i]):
                note, color = "\nfooled", "red"
            else:
                note, color = "", "green"
            axes[adv_row, i].set_title(
                f"pred {int(pred_adv[i])}{note}", fontsize=9, color=color
            )
        axes[adv_row, 0].set_ylabel(f"adversarial\n{label}", fontsize=9)
        axes[adv_row + 1, 0].set_ylabel(
            "perturbation\nred +, blue -", fontsize=9
        )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())  # type: ignore[attr-defined]
    return np.ascontiguousarray(rgba[..., :3])


def adversarial_grid(
    x: ArrayLike,
    x_adv: ArrayLike,
    y: Sequence[int] | np.ndarray,
    pred_clean: Sequence[int] | np.ndarray,
    pred_adv: Sequence[int] | np.ndarray,
    value_range: ValueRange = (0.0, 1.0),
    attack_label: str = "attack",
    title: str | None = None,
) -> np.ndarray:
    """Renders clean / adversarial / perturbation rows into one RGB image.

    `robustness_grid` for one attack. Column `i` shows sample `i`: its
    clean input labelled with the true and predicted class, the
    adversarial input labelled with the new prediction (red when the
    attack fooled the model, green otherwise) and the perturbation
    `x_adv - x` scaled for viewing (red +, blue -, white unchanged; gray
    unchanged for RGB images and without matplotlib, when the three rows
    are returned without labels).

    Args:
        x: Clean images `(n, h, w[, c])`.
        x_adv: Adversarial images, same shape.
        y: Int true labels `(n,)`.
        pred_clean: Int predictions on `x`.
        pred_adv: Int predictions on `x_adv`.
        value_range: Pair `(low, high)` of the inputs.
        attack_label: Text naming the attack in the row label.
        title: Optional title drawn above the grid.

    Returns:
        A uint8 array of shape `(height, width, 3)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.evaluation import adversarial_grid
    >>> x = np.zeros((2, 8, 8, 1), "float32")
    >>> grid = adversarial_grid(x, x + 0.1, [0, 1], [0, 1], [0, 2])
    >>> grid.dtype.name, grid.ndim, grid.shape[-1]
    ('uint8', 3, 3)

    Reference:
        Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial
        Examples", ICLR 2015, [arXiv:1412.6572](https://arxiv.org/abs/1412.6572)
        (the clean / perturbation / adversarial presentation of its Figure 1).
    """
    return robustness_grid(
        x,
        y,
        pred_clean,
        {attack_label: (x_adv, pred_adv)},
        value_range=value_range,
        title=title,
    )
