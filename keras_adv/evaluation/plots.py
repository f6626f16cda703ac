"""Pictures of robustness: accuracy-versus-eps curves and example grids.

matplotlib is an optional dependency (the `plots` extra). It is imported
lazily and only the object-oriented API is used (no pyplot state, no GUI
backend), so plotting works headless and from callbacks.
"""

import numpy as np

_INSTALL_HINT = (
    "Plotting needs matplotlib, an optional dependency of keras_adv. "
    'Install it with `pip install "keras-adv[plots]"` (or `pip install '
    "matplotlib`)."
)


def _figure(width, height, dpi=100):
    """Returns a matplotlib Figure with an Agg canvas (no pyplot)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def has_matplotlib():
    """True if matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_accuracy_curves(report, path, title=None):
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
    ax.set_xlabel("eps (perturbation radius)")
    ax.set_ylabel("accuracy under attack (%)")
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


def _curve_label(name, entry):
    steps = entry.get("steps", 1)
    detail = entry["norm"] if steps <= 1 else f"{entry['norm']}, {steps} steps"
    return f"{name} ({detail})"


def _to_display(images, value_range):
    """Maps images to float [0, 1] with shape (n, h, w, c), c in {1, 3}."""
    low, high = value_range
    images = (np.asarray(images, "float32") - low) / (high - low)
    images = np.clip(images, 0.0, 1.0)
    if images.ndim == 3:
        images = images[..., None]
    return images


def scale_perturbation(delta):
    """Maps perturbations to [0, 1] for viewing: 0.5 is no change.

    Each image is divided by twice its own largest absolute value, so the
    strongest pixel change is black (-) or white (+).
    """
    delta = np.asarray(delta, "float32")
    axes = tuple(range(1, delta.ndim))
    peak = np.max(np.abs(delta), axis=axes, keepdims=True)
    return 0.5 + delta / (2.0 * np.maximum(peak, 1e-12))


def is_image_batch(x):
    """True for (n, h, w) or (n, h, w, c) with c in {1, 3}."""
    shape = np.shape(x)
    return len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3))


def tile_images(rows, gap=2):
    """Stacks rows of `(n, h, w, c)` images into one float array with gaps.

    No text; the gaps are white (1.0). Returns `(rows*(h+gap)+gap,
    n*(w+gap)+gap, c)`.
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


def adversarial_grid(
    x,
    x_adv,
    y,
    pred_clean,
    pred_adv,
    value_range=(0.0, 1.0),
    attack_label="attack",
    title=None,
):
    """Renders clean / adversarial / perturbation rows into one RGB image.

    Column `i` shows sample `i`: its clean input labelled with the true and
    predicted class, the adversarial input labelled with the new prediction
    (red when the attack fooled the model, green otherwise) and the
    perturbation `x_adv - x` scaled for viewing (gray = unchanged). Without
    matplotlib, the three rows are returned without labels.

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
        Goodfellow, Shlens and Szegedy, "Explaining and Harnessing
        Adversarial Examples", ICLR 2015, arXiv:1412.6572 (the
        clean / perturbation / adversarial presentation of its Figure 1).
    """
    clean = _to_display(x, value_range)
    adv = _to_display(x_adv, value_range)
    delta = scale_perturbation(
        np.asarray(x_adv, "float32") - np.asarray(x, "float32")
    )
    if delta.ndim == 3:
        delta = delta[..., None]
    rows = [clean, adv, np.clip(delta, 0.0, 1.0)]
    if not has_matplotlib():
        grid = tile_images(rows)
        if grid.shape[-1] == 1:
            grid = np.repeat(grid, 3, axis=-1)
        return (255.0 * grid).astype("uint8")

    n = clean.shape[0]
    fig = _figure(1.0 + 1.15 * n, 4.3, dpi=80)
    row_labels = [
        "clean",
        f"adversarial\n{attack_label}",
        "perturbation\n(gray = 0)",
    ]
    for r, row in enumerate(rows):
        for i in range(n):
            ax = fig.add_subplot(3, n, r * n + i + 1)
            image = row[i]
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                ax.imshow(image, vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ok = int(pred_clean[i]) == int(y[i])
                ax.set_title(
                    f"true {int(y[i])}\npred {int(pred_clean[i])}",
                    fontsize=9,
                    color="black" if ok else "darkorange",
                )
            elif r == 1:
                fooled = int(pred_adv[i]) != int(y[i])
                ax.set_title(
                    f"pred {int(pred_adv[i])}"
                    + (" (fooled)" if fooled else ""),
                    fontsize=9,
                    color="red" if fooled else "green",
                )
            if i == 0:
                ax.set_ylabel(row_labels[r], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])
