"""Tests for the plotting helpers (accuracy curves, adversarial grids)."""

import numpy as np
import pytest

from keras_adv.evaluation import _plots as plots
from keras_adv.evaluation import adversarial_grid


def test_scale_perturbation_maps_zero_to_gray():
    delta = np.array([[[0.0, 0.1], [-0.2, 0.05]]], "float32")
    scaled = plots.scale_perturbation(delta)
    np.testing.assert_allclose(scaled, [[[0.5, 0.75], [0.0, 0.625]]])
    np.testing.assert_allclose(plots.scale_perturbation(0 * delta), 0.5)


def _batch(n=4):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, size=(n, 12, 12, 1)).astype("float32")
    x_adv = x + rng.choice([-0.1, 0.1], size=x.shape)
    y = np.arange(n)
    return x, x_adv.astype("float32"), y


def test_adversarial_grid_is_one_rgb_image():
    pytest.importorskip("matplotlib")
    x, x_adv, y = _batch()
    grid = adversarial_grid(x, x_adv, y, y, (y + 1) % 10, title="PGD")
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[-1] == 3
    # Three rows of images: taller than one image row, wider than tall.
    assert grid.shape[0] > 3 * 12 and grid.shape[1] > grid.shape[0]
    assert grid.std() > 10  # not blank


def test_adversarial_grid_without_matplotlib(monkeypatch):
    monkeypatch.setattr(plots, "has_matplotlib", lambda: False)
    x, x_adv, y = _batch(3)
    grid = adversarial_grid(x[..., 0], x_adv[..., 0], y, y, y)
    gap = 2
    assert grid.shape == (3 * (12 + gap) + gap, 3 * (12 + gap) + gap, 3)
    # The first clean image sits in the top-left corner, in 0..255.
    np.testing.assert_allclose(
        grid[gap : gap + 12, gap : gap + 12, 0],
        (255.0 * x[0, ..., 0]).astype("uint8"),
    )
    # Perturbations of +-0.1 are shown black or white.
    row = grid[gap + 2 * 14 : gap + 2 * 14 + 12, gap : gap + 12, 0]
    sign = np.sign(x_adv[0, ..., 0] - x[0, ..., 0])
    np.testing.assert_allclose(row, 127.5 + 127.5 * sign, atol=2)
