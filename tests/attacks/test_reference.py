"""Closed-form and independent-reference checks of FGSM, BIM and PGD.

For a linear model z = x W + b, the cross-entropy gradient w.r.t. the input
is W (softmax(z) - onehot(y)), so the attacks can be recomputed in numpy
from scratch and compared step by step.
"""

import numpy as np
import pytest

from keras_adv import attacks
from keras_adv.testing import linear_classifier

RNG = np.random.default_rng(7)
W = RNG.normal(size=(12, 5)).astype("float32")
B = RNG.normal(size=(5,)).astype("float32")
X = RNG.uniform(0.1, 0.9, size=(40, 12)).astype("float32")


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _ce_grad(x, y, targeted=False):
    p = _softmax(x.astype("float64") @ W + B)
    p[np.arange(len(y)), y] -= 1.0
    g = p @ W.T
    return -g if targeted else g


def _direction(g, norm):
    if norm == "linf":
        return np.sign(g)
    n = np.sqrt((g**2).sum(axis=1, keepdims=True))
    return g / np.maximum(n, 1e-12)


def _project(x_adv, x, eps, norm):
    delta = x_adv - x
    if norm == "linf":
        delta = np.clip(delta, -eps, eps)
    else:
        n = np.sqrt((delta**2).sum(axis=1, keepdims=True))
        delta = delta * np.minimum(1.0, eps / np.maximum(n, 1e-12))
    return np.clip(x + delta, 0.0, 1.0)


def reference_bim(x, y, eps, steps, step_size, norm, targeted=False):
    """Numpy PGD without random start (BIM); steps=1, step=eps is FGSM."""
    x_adv = x.astype("float64")
    for _ in range(steps):
        g = _ce_grad(x_adv, y, targeted)
        x_adv = _project(x_adv + step_size * _direction(g, norm), x, eps, norm)
    return x_adv


def test_fgsm_closed_form_two_class_softmax_model():
    # Two classes: grad = p_other * (w_other - w_y), so the FGSM step is
    # exactly eps * sign(w_other - w_y), whatever the input.
    w = np.array([[1.0, -2.0], [0.5, 0.5], [-3.0, 1.0]], "float32")
    model = linear_classifier(w, softmax=True)  # outputs probabilities
    x = np.full((2, 3), 0.5, "float32")
    y = np.array([0, 1])
    x_adv = np.asarray(attacks.FGSM(eps=0.1)(model, x, y))
    expected = x + 0.1 * np.stack(
        [np.sign(w[:, 1] - w[:, 0]), np.sign(w[:, 0] - w[:, 1])]
    )
    np.testing.assert_allclose(x_adv, expected, atol=1e-7)


def test_fgm_l2_closed_form_two_class():
    w = np.array([[3.0, -1.0], [0.0, 2.0]], "float32")
    model = linear_classifier(w)
    x = np.full((1, 2), 0.5, "float32")
    x_adv = np.asarray(attacks.FGSM(eps=0.2, norm="l2")(model, x, [0]))
    d = w[:, 1] - w[:, 0]
    np.testing.assert_allclose(
        x_adv[0], 0.5 + 0.2 * d / np.linalg.norm(d), atol=1e-6
    )


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.3)])
@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_matches_numpy_reference(norm, eps, targeted):
    model = linear_classifier(W, B)
    y = (np.argmax(X @ W + B, axis=1) + int(targeted)) % 5
    ours = np.asarray(
        attacks.FGSM(eps=eps, norm=norm, targeted=targeted)(model, X, y)
    )
    ref = reference_bim(X, y, eps, 1, eps, norm, targeted)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.3)])
@pytest.mark.parametrize("targeted", [False, True])
def test_bim_matches_numpy_reference(norm, eps, targeted):
    model = linear_classifier(W, B)
    y = (np.argmax(X @ W + B, axis=1) + 2 * int(targeted)) % 5
    attack = attacks.BIM(eps=eps, steps=7, norm=norm, targeted=targeted)
    ours = np.asarray(attack(model, X, y))
    ref = reference_bim(X, y, eps, 7, 2.5 * eps / 7, norm, targeted)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.3)])
def test_pgd_without_random_start_matches_reference(norm, eps):
    model = linear_classifier(W, B)
    y = np.argmax(X @ W + B, axis=1)
    attack = attacks.PGD(
        eps=eps, steps=5, step_size=0.02, random_start=False, norm=norm
    )
    ref = reference_bim(X, y, eps, 5, 0.02, norm)
    np.testing.assert_allclose(np.asarray(attack(model, X, y)), ref, atol=1e-5)


def test_mim_matches_numpy_reference():
    model = linear_classifier(W, B)
    y = np.argmax(X @ W + B, axis=1)
    eps, steps, decay = 0.05, 4, 0.8
    x_adv, velocity = X.astype("float64"), np.zeros_like(X, "float64")
    for _ in range(steps):
        g = _ce_grad(x_adv, y)
        velocity = decay * velocity + g / np.abs(g).mean(axis=1, keepdims=True)
        x_adv = _project(
            x_adv + eps / steps * np.sign(velocity), X, eps, "linf"
        )
    ours = attacks.MIM(eps=eps, steps=steps, decay=decay)(model, X, y)
    np.testing.assert_allclose(np.asarray(ours), x_adv, atol=1e-5)


def test_fgsm_rs_step_is_one_and_a_quarter_eps():
    # From a start u in [-eps, eps], a step of 1.25 eps along s = sign(g)
    # then projection: u + 1.25 eps s always has the sign of s, so each
    # coordinate moves with the gradient (taken at the random start, which
    # is close to the gradient at x for this linear model).
    model = linear_classifier(W, B)
    y = np.argmax(X @ W + B, axis=1)
    attack = attacks.FGSM(eps=0.05, random_start=True, seed=0)
    x_adv = np.asarray(attack(model, X, y))
    g = _ce_grad(X, y)
    moved = np.abs(x_adv - X)
    assert moved.max() <= 0.05 + 1e-6
    agree = np.sign(x_adv - X) == np.sign(g)
    assert agree.mean() > 0.97
    assert float(attack.step_size_for(0.05)) == pytest.approx(0.0625)
