"""Matplotlib figures without pyplot: the one home of plotting set-up.

matplotlib is optional (the `plots` extra). Every plot of keras_adv
(robustness curves and image grids in `evaluation`, certified-accuracy
curves in `certification`) draws on a `Figure` with an Agg canvas made
here, so no global pyplot state is touched and a missing matplotlib gives
one message saying how to install it.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL_HINT = (
    "Plotting needs matplotlib, an optional dependency of keras_adv. "
    'Install it with `pip install "keras-adv[plots]"` (or `pip install '
    "matplotlib`)."
)


def figure(width: float, height: float, dpi: int = 100) -> "Figure":
    """A matplotlib `Figure` with an Agg canvas (no pyplot).

    Raises:
        ImportError: with `INSTALL_HINT` if matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def has_matplotlib() -> bool:
    """True if matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
