"""Square's schedule and geometry: pure helpers of `_square.py`.

The size schedule of the square (`p_selection`, `window_side`), the
L2 attack's pseudo-Gaussian tiles (`meta_pseudo_gaussian`) and the small
tensor helpers of the search, each a function of its arguments (graph-safe
where it takes tensors). Kept apart from the search so that each module
has one job: this one the arithmetic the reference specifies, `_square.py`
the attack.
"""

import bisect
import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv._types import Tensor

#: Iterations, on the reference's scale of 10,000, after which p halves.
P_BREAKPOINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
#: Guard of the reference's normalisations.
_TINY = 1e-12


def p_selection(
    iteration: int, n_queries: int, p_init: float = 0.8, rescale: bool = True
) -> float:
    """The fraction of the image a window covers at `iteration`.

    The reference's piecewise-constant schedule: `p_init`, halved after
    iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of a
    10,000-query budget. With `rescale`, other budgets rescale the
    iteration first, `int(iteration / n_queries * 10000)`, so the halvings
    keep their relative positions (the paper's schedule); without, the
    breakpoints are iteration numbers (AutoAttack's standard version runs
    5,000 queries with `resc_schedule=False`: p stops at `p_init / 128`).

    Args:
        iteration: Int >= 0, the iteration index (from 0).
        n_queries: Int >= 1, the query budget.
        p_init: Float in (0, 1]. Defaults to `0.8`.
        rescale: Bool, rescale to `n_queries`. Defaults to `True`.

    Returns:
        Float, `p_init / 2**k` with `k` the breakpoints passed.

    Example:

    >>> from keras_adv.attacks._square_schedule import p_selection
    >>> [p_selection(i, 5000) for i in (0, 5, 6, 25, 26)]
    [0.8, 0.8, 0.4, 0.4, 0.2]
    >>> p_selection(26, 5000, rescale=False)
    0.4

    Reference:
        Andriushchenko et al., "Square Attack: a query-efficient black-box
        adversarial attack via random search", ECCV 2020,
        [arXiv:1912.00049](https://arxiv.org/abs/1912.00049).
    """
    iteration = _validation.check_int("iteration", iteration, minimum=0)
    n_queries = _validation.check_int("n_queries", n_queries, minimum=1)
    scaled = _scaled(iteration, n_queries, rescale)
    return p_init / 2 ** sum(scaled > b for b in P_BREAKPOINTS)


def _scaled(iteration: int, n_queries: int, rescale: bool) -> int:
    """The iteration on the reference's scale (its exact expression)."""
    if rescale:
        return int(iteration / n_queries * 10000)
    return iteration


def window_side(
    p: float, n_features: int, channels: int, norm: str = "linf"
) -> int:
    """The reference's window side for a fraction `p` of the image.

    `round(sqrt(p * n_features / channels))`, at least 1 for L-inf; for
    L2 at least 3 and odd (an even side is increased by one). Python's
    `round` (half to even), as the reference.

    Args:
        p: Float, the fraction from `p_selection`.
        n_features: Int, `height * width * channels`.
        channels: Int, the number of channels.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.

    Returns:
        Int, the side of the square window in pixels.

    Example:

    >>> from keras_adv.attacks._square_schedule import window_side
    >>> window_side(0.8, 28 * 28, 1), window_side(0.05, 28 * 28, 1, "l2")
    (25, 7)
    """
    side = int(round(math.sqrt(p * n_features / channels)))
    if norm == "linf":
        return max(side, 1)
    side = max(side, 3)
    return side + 1 if side % 2 == 0 else side


def _bump(rows: int, cols: int) -> np.ndarray:
    """The reference's pseudo-Gaussian bump on a `rows x cols` rectangle.

    Nested rectangles around the centre `(rows // 2, cols // 2)`: ring `k`
    (Chebyshev distance `k` from the centre) adds `1 / (k + 1)**2` to
    everything inside it, so an element at distance `m` holds
    `sum_{k=m}^{K-1} 1 / (k + 1)**2`, `K = max(rows, cols) // 2 + 1`
    rings in all. Unit L2 norm; empty if a side is 0.
    """
    if rows == 0 or cols == 0:
        return np.zeros((rows, cols))
    rings = max(rows // 2, cols // 2) + 1
    weights = 1.0 / np.arange(1, rings + 1) ** 2
    from_ring = np.cumsum(weights[::-1])[::-1]  # sum over rings k >= m
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    distance = np.maximum(np.abs(i - rows // 2), np.abs(j - cols // 2))
    bump = from_ring[distance]
    return bump / np.sqrt(np.sum(bump**2))


def meta_pseudo_gaussian(
    rows: int, cols: int, split_axis: int = 0
) -> np.ndarray:
    """The reference's L2 update pattern: two bumps of opposite signs.

    With `split_axis=0` the first `rows // 2` rows hold a positive
    pseudo-Gaussian bump and the others a negative one (each of unit norm,
    the sum rescaled to unit L2 norm); `split_axis=1` splits the columns
    instead, which for a square is the transposed pattern (the reference
    transposes with probability 1/2).

    Args:
        rows: Int >= 1.
        cols: Int >= 1.
        split_axis: 0 or 1. Defaults to `0`.

    Returns:
        Float64 numpy array `(rows, cols)` of unit L2 norm.

    Example:

    >>> from keras_adv.attacks._square_schedule import meta_pseudo_gaussian
    >>> meta_pseudo_gaussian(2, 1).ravel().round(4)
    array([ 0.7071, -0.7071])
    """
    if split_axis == 1:
        return meta_pseudo_gaussian(cols, rows, 0).T
    top = rows // 2
    pattern = np.concatenate(
        [_bump(top, cols), -_bump(rows - top, cols)], axis=0
    )
    return pattern / np.sqrt(np.sum(pattern**2))


def _grid(shape: tf.TensorShape) -> tuple[int, int, int]:
    """`(height, width, channels)` of the image view of inputs `shape`.

    `(batch, n)` vectors are `1 x n` single-channel images, `(batch, h, w)`
    single-channel images, `(batch, h, w, c)` channels-last images.
    """
    dims = tuple(shape[1:])
    if len(dims) not in (1, 2, 3) or any(d is None for d in dims):
        raise ValueError(
            "Square needs inputs of a static shape (batch, features), "
            "(batch, height, width) or (batch, height, width, channels) "
            f"(channels last). Received: x with shape {tuple(shape)}"
        )
    if len(dims) == 1:
        return 1, dims[0], 1
    if len(dims) == 2:
        return dims[0], dims[1], 1
    return dims


def _signs(shape: Sequence[int | Tensor], seed: Tensor) -> Tensor:
    """Uniform random signs +-1 (float32) from a stateless seed."""
    u = tf.random.stateless_uniform(shape, seed)
    return ops.where(u < 0.5, -1.0, 1.0)


def _offset(u: Tensor, free: int | Tensor) -> Tensor:
    """A position in `{0, ..., free}` from a uniform `u` in [0, 1)."""
    position = ops.cast(ops.floor(u * ops.cast(free + 1, "float32")), "int32")
    return ops.minimum(position, free)


def _window(offset: Tensor, size: Tensor, length: int) -> Tensor:
    """Bool `(length,)`: the indices `offset <= i < offset + size`."""
    index = ops.arange(length, dtype="int32")
    return ops.logical_and(index >= offset, index < offset + size)


def _rect(rows: Tensor, cols: Tensor) -> Tensor:
    """Float32 `(1, h, w, 1)` mask of the product of two index windows."""
    mask = ops.logical_and(rows[:, None], cols[None, :])
    return ops.cast(mask, "float32")[None, :, :, None]


def _norm(t: Tensor, axis: int | tuple[int, ...]) -> Tensor:
    return ops.sqrt(ops.sum(ops.square(t), axis=axis, keepdims=True))


class _Schedule:
    """The static per-phase tables of one attack configuration and shape.

    Phase `k` (`k` halvings of `p`) starts at iteration `starts[k]`; its
    window is `sides_h[k] x sides_w[k]` (the reference's side, cut to the
    image). For L2, `patterns[k, a]` is the phase's meta pseudo-Gaussian
    split along axis `a`, in the top-left corner of an `h x w` canvas.
    """

    def __init__(
        self,
        n_queries: int,
        p_init: float,
        norm: str,
        h: int,
        w: int,
        c: int,
        rescale: bool = True,
    ) -> None:
        def scaled(i: int) -> int:
            return _scaled(i, n_queries, rescale)

        starts = [0]
        for b in P_BREAKPOINTS:
            # The first iteration past breakpoint b (the scale is monotone).
            starts.append(bisect.bisect_right(range(n_queries), b, key=scaled))
        self.starts = np.asarray(starts[1:], "int32")
        sides = [
            window_side(p_init / 2**k, h * w * c, c, norm)
            for k in range(len(starts))
        ]
        self.sides_h = np.asarray([min(s, h) for s in sides], "int32")
        self.sides_w = np.asarray([min(s, w) for s in sides], "int32")
        if norm != "l2":
            return
        canvases = np.zeros((len(sides), 2, h, w), "float32")
        for k, (sh, sw) in enumerate(zip(self.sides_h, self.sides_w)):
            for axis in (0, 1):
                canvases[k, axis, :sh, :sw] = meta_pseudo_gaussian(
                    int(sh), int(sw), axis
                )
        self.patterns = canvases

    def phase(self, iteration: Tensor) -> Tensor:
        return ops.sum(ops.cast(iteration >= self.starts, "int32"))


def _l2_tiles(h: int, w: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The static tiling of the reference's L2 start.

    Squares of side `max(h // 5, 1)` in rows and columns from
    `(h - 5 side) // 2` (both axes, as the reference), those that fit.
    Returns `(tile_id, patterns)`: the tile of every pixel (`n_tiles` for
    none) and, per split axis, each tile's meta pseudo-Gaussian placed on
    an `h x w` canvas.
    """
    side = max(h // 5, 1)
    start = max((h - 5 * side) // 2, 0)
    rows = [start + t * side for t in range(h // side)]
    cols = [start + t * side for t in range(w // side)]
    rows = [r for r in rows if r + side <= h]
    cols = [c for c in cols if c + side <= w]
    n_tiles = len(rows) * len(cols)
    tile_id = np.full((h, w), n_tiles, "int32")
    patterns = np.zeros((2, h, w), "float32")
    for a, r in enumerate(rows):
        for b, c in enumerate(cols):
            tile_id[r : r + side, c : c + side] = a * len(cols) + b
            for axis in (0, 1):
                patterns[axis, r : r + side, c : c + side] = (
                    meta_pseudo_gaussian(side, side, axis)
                )
    return tile_id, patterns, n_tiles
