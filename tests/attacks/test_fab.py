"""FAB: the box-constrained hyperplane projections and the attack.

The projections are checked against closed forms (when the box is not in
the way), a float64 bisection on the optimality condition, and a
brute-force random search over the feasible set. The attack is checked on
linear models, where the smallest perturbation is known in closed form.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks._fab import FAB
from keras_adv.attacks._fab import projection_l2
from keras_adv.attacks._fab import projection_linf
from keras_adv.testing import TestCase
from keras_adv.testing import linear_classifier

PROJECTIONS = {"linf": projection_linf, "l2": projection_l2}
ORD = {"linf": np.inf, "l2": 2}


def reference_projection(t, w, b, norm, low=0.0, high=1.0):
    """Float64 solution of min ||d|| s.t. <w, t + d> = b, t + d in box.

    The optimum is d_i = -s_i min(lam r_i, room_i), with r_i = 1 (L-inf)
    or |w_i| (L2); lam is found by bisection on the monotone function
    h(lam) = sum |w_i| min(lam r_i, room_i) = |<w, t> - b|.
    """
    t, w = t.astype("float64"), w.astype("float64")
    out = np.zeros_like(t)
    for row in range(len(t)):
        gap = w[row] @ t[row] - float(b[row])
        v = w[row] * np.sign(gap) if gap != 0 else w[row]
        gap = abs(gap)
        room = np.where(v > 0, t[row] - low, high - t[row])
        rate = np.ones_like(v) if norm == "linf" else np.abs(v)

        def h(lam, v=v, room=room, rate=rate):
            return np.sum(np.abs(v) * np.minimum(lam * rate, room))

        lo, hi = 0.0, 1e6
        if h(hi) < gap:  # the hyperplane misses the box: nearest corner
            out[row] = -np.sign(v) * room
            continue
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if h(mid) < gap else (lo, mid)
        out[row] = -np.sign(v) * np.minimum(hi * rate, room)
    return out


def brute_force_norm(t, w, b, norm, samples=200_000, seed=0):
    """Smallest norm among random feasible points of hyperplane and box."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(size=(samples, len(t)))
    direction = rng.normal(size=(samples, len(t)))
    s = (b - z @ w) / (direction @ w)
    z = z + s[:, None] * direction
    inside = np.all((z >= 0.0) & (z <= 1.0), axis=1)
    return np.linalg.norm(z[inside] - t, ord=ORD[norm], axis=1).min()


# ------------------------------------------------------------ projections
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_closed_form_inside_the_box(norm):
    rng = np.random.default_rng(0)
    t = rng.uniform(0.4, 0.6, size=(8, 20)).astype("float32")
    w = rng.normal(size=(8, 20)).astype("float32")
    gap = rng.uniform(-0.05, 0.05, size=8).astype("float32")
    b = np.sum(w * t, axis=1) - gap
    d = np.asarray(PROJECTIONS[norm](t, w, b))
    if norm == "linf":
        expected = -np.sign(w) * (gap / np.abs(w).sum(axis=1))[:, None]
    else:
        expected = -w * (gap / np.square(w).sum(axis=1))[:, None]
    np.testing.assert_allclose(d, expected, atol=1e-6)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_matches_float64_reference_with_active_box(norm):
    rng = np.random.default_rng(1)
    t = rng.uniform(0.0, 1.0, size=(32, 50)).astype("float32")
    w = rng.normal(size=(32, 50)).astype("float32")
    w[:, :5] = 0.0  # coordinates that cannot help do not move
    # Offsets from "barely moved" to "beyond the box" (infeasible rows).
    scale = np.abs(w).sum(axis=1) * np.linspace(0.01, 0.7, 32)
    b = np.sum(w * t, axis=1) + np.where(np.arange(32) % 2, 1, -1) * scale
    b = b.astype("float32")
    d = np.asarray(PROJECTIONS[norm](t, w, b))
    ref = reference_projection(t, w, b, norm)
    np.testing.assert_allclose(d, ref, atol=2e-5)
    assert np.all(d[:, :5] == 0.0)
    z = t + d
    assert z.min() >= -1e-6 and z.max() <= 1.0 + 1e-6
    feasible = np.abs(np.sum(w * (t + ref), axis=1) - b) < 1e-6 * scale
    assert 0 < feasible.sum() < 32  # both cases are exercised
    np.testing.assert_allclose(
        np.sum(w * z, axis=1)[feasible], b[feasible], atol=1e-4
    )


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_is_minimal_against_brute_force(norm):
    rng = np.random.default_rng(2)
    for row in range(6):
        t = rng.uniform(0.0, 1.0, size=3)
        w = rng.normal(size=3)
        z = rng.uniform(size=3)  # a feasible target: the hyperplane meets
        b = w @ z  # the box, often through a face near t
        d = np.asarray(
            PROJECTIONS[norm](
                t[None].astype("float32"),
                w[None].astype("float32"),
                np.array([b], "float32"),
            )
        )[0]
        ours = np.linalg.norm(d, ord=ORD[norm])
        assert abs(w @ (t + d) - b) < 1e-5, row
        assert np.all(t + d >= -1e-6) and np.all(t + d <= 1 + 1e-6), row
        best = brute_force_norm(t, w, b, norm, seed=row)
        assert ours <= best + 1e-5, (row, ours, best)
        assert best <= ours + 0.02, (row, ours, best)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_infeasible_goes_to_the_nearest_corner(norm):
    t = np.array([[0.5, 0.5, 0.5]], "float32")
    w = np.array([[1.0, -1.0, 0.0]], "float32")
    d = np.asarray(PROJECTIONS[norm](t, w, np.array([5.0], "float32")))
    np.testing.assert_allclose(d, [[0.5, -0.5, 0.0]], atol=1e-7)


def test_projection_respects_the_value_range_and_zero_offset():
    t = np.array([[0.0, 0.5], [1.0, 2.0]], "float32")
    w = np.array([[1.0, 1.0], [1.0, 1.0]], "float32")
    b = np.array([-1.0, 3.0], "float32")  # row 1: t is on the hyperplane
    d = np.asarray(projection_linf(t, w, b, value_range=(-1.0, 2.0)))
    # Row 0: lower both by 0.75 (inside [-1, 2]); row 1: no move.
    np.testing.assert_allclose(d, [[-0.75, -0.75], [0.0, 0.0]], atol=1e-7)


# ------------------------------------------------------------------ attack
# Every attack instance traces its own graph (about a second each), so
# the tests share instances and vary eps and labels per call instead.
@pytest.fixture(scope="module")
def binary_problem():
    """Two classes, decision boundary <w1 - w0, x> + b1 - b0 = 0."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(10, 2)).astype("float32")
    bias = np.array([0.0, 0.3], "float32")
    x = rng.uniform(0.4, 0.6, size=(16, 10)).astype("float32")
    logits = x @ w + bias
    y = np.argmax(logits, axis=1)
    diff = w[:, 1] - w[:, 0]
    margin = np.abs(logits[:, 1] - logits[:, 0])
    distance = {
        "linf": margin / np.abs(diff).sum(),
        "l2": margin / np.linalg.norm(diff),
    }
    return linear_classifier(w, bias), x, y, diff, distance


@pytest.fixture(scope="module")
def attacks():
    return {norm: FAB(eps=1.0, norm=norm) for norm in ("linf", "l2")}


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_finds_the_closed_form_minimal_perturbation(
    norm, binary_problem, attacks
):
    model, x, y, diff, distance = binary_problem
    expected = distance[norm]
    attack = attacks[norm]
    x_adv = np.asarray(attack(model, x, y))
    found = np.linalg.norm(x_adv - x, ord=ORD[norm], axis=1)
    assert np.all(np.argmax(model(x_adv), axis=1) != y)
    # Never inside the true distance, at most 1% beyond it.
    assert np.all(found >= expected * (1 - 1e-5))
    np.testing.assert_allclose(found, expected, rtol=1e-2)
    # Along the closed-form direction: sign(w_diff) (L-inf), w_diff (L2).
    toward = np.where(y == 0, 1.0, -1.0)[:, None] * diff
    if norm == "linf":
        direction = np.sign(toward)
    else:
        direction = toward / np.linalg.norm(diff)
    np.testing.assert_allclose(
        x_adv - x, direction * expected[:, None], rtol=1e-2, atol=1e-6
    )
    norms = np.asarray(attack.perturbation_norms(model, x, x_adv, y))
    np.testing.assert_allclose(norms, found, rtol=1e-5)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_keeps_x_beyond_eps(norm, binary_problem, attacks):
    model, x, y, _, distance = binary_problem
    distance = distance[norm]
    attack = attacks[norm]
    eps = float(np.median(distance))
    x_adv = np.asarray(attack(model, x, y, eps=eps))
    far, near = distance > eps * 1.02, distance < eps / 1.02
    assert far.any() and near.any()
    np.testing.assert_array_equal(x_adv[far], x[far])
    found = np.linalg.norm(x_adv - x, ord=ORD[norm], axis=1)
    assert np.all(found <= eps + 1e-6)
    assert np.all(np.argmax(model(x_adv[near]), axis=1) != y[near])
    norms = np.asarray(attack.perturbation_norms(model, x, x_adv, y))
    assert np.all(np.isinf(norms[far]))
    np.testing.assert_array_equal(np.asarray(attack(model, x, y, eps=0.0)), x)


def test_fab_jit_compile_gives_the_same_result(binary_problem, attacks):
    model, x, y, _, _ = binary_problem
    plain = np.asarray(attacks["linf"](model, x, y))
    jitted = FAB(eps=1.0, norm="linf", jit_compile=True)(model, x, y)
    np.testing.assert_allclose(np.asarray(jitted), plain, atol=1e-5)


def test_fab_per_sample_eps(binary_problem, attacks):
    model, x, y, _, _ = binary_problem
    eps = np.where(np.arange(len(x)) < 8, 1.0, 0.0).astype("float32")
    x_adv = np.asarray(attacks["linf"](model, x, y, eps=eps))
    np.testing.assert_array_equal(x_adv[8:], x[8:])
    assert np.all(np.argmax(model(x_adv[:8]), axis=1) != y[:8])


def test_fab_returns_misclassified_samples_unchanged(binary_problem, attacks):
    model, x, y, _, _ = binary_problem
    wrong = 1 - y
    x_adv = np.asarray(attacks["linf"](model, x, wrong))
    np.testing.assert_array_equal(x_adv, x)
    norms = attacks["linf"].perturbation_norms(model, x, x_adv, wrong)
    np.testing.assert_array_equal(np.asarray(norms), 0.0)


def test_fab_t_tries_the_runner_up_classes_in_order():
    # Class 0 wins; the runner-up class 1 is far (a small weight
    # difference): L-inf distance 0.03 / 0.08 = 0.375. The third class 2
    # is near: 0.2 / 4 = 0.05, in the opposite direction.
    w = np.zeros((4, 3), "float32")
    w[:, 1] = 0.02
    w[:, 2] = -1.0
    bias = np.array([1.0, 0.93, 2.8], "float32")
    model = linear_classifier(w, bias)
    x = np.full((1, 4), 0.5, "float32")
    np.testing.assert_allclose(model(x), [[1.0, 0.97, 0.8]], atol=1e-6)
    y = np.array([0])
    # One target (the runner-up): its boundary is beyond eps, x is kept.
    x_adv = np.asarray(FAB(eps=0.1, target_classes=1)(model, x, y))
    np.testing.assert_array_equal(x_adv, x)
    # Two targets: the second finds the near boundary.
    two = FAB(eps=0.1, target_classes=2)
    x_adv = np.asarray(two(model, x, y))
    assert np.argmax(model(x_adv)) == 2
    assert np.abs(x_adv - x).max() == pytest.approx(0.05, rel=1e-2)
    # AutoAttack's chaining: the first success within eps is kept, even
    # if a later target would give a smaller perturbation.
    x_adv = np.asarray(two(model, x, y, eps=1.0))
    assert np.argmax(model(x_adv)) == 1
    assert np.abs(x_adv - x).max() == pytest.approx(0.375, rel=1e-2)


def _dead_gradient_model():
    """Class 0 wherever x_0 < 0.5, where the gradient is exactly zero."""
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(1, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    model.set_weights(
        [
            np.array([[1.0], [0.0], [0.0], [0.0]], "float32"),
            np.array([-0.5], "float32"),
            np.array([[-10.0, 10.0]], "float32"),
            np.array([0.1, 0.0], "float32"),
        ]
    )
    return model


def test_fab_random_restarts_are_seeded_and_help():
    # From x the gradient vanishes: the first search cannot move. Random
    # restarts (at eps / 2) land where x_0 > 0.5 and find the boundary
    # x_0 = 0.505, within eps.
    model = _dead_gradient_model()
    x = np.full((32, 4), 0.45, "float32")
    y = np.zeros(32, "int32")
    kwargs = dict(eps=0.3, steps=5)
    one = np.asarray(FAB(restarts=1, **kwargs)(model, x, y))
    np.testing.assert_array_equal(one, x)
    attack = FAB(restarts=4, seed=1, **kwargs)
    a, c = np.asarray(attack(model, x, y)), np.asarray(attack(model, x, y))
    b = np.asarray(FAB(restarts=4, seed=1, **kwargs)(model, x, y))
    np.testing.assert_array_equal(a, b)  # same seed, same result
    assert not np.array_equal(a, c)  # the seed generator advances
    fooled = np.argmax(model(a), axis=1) != y
    assert fooled.mean() > 0.5
    assert np.all(np.abs(a - x).max(axis=1) <= 0.3 + 1e-6)
    assert np.all(a[fooled, 0] > 0.505)
    # Stateless seeds inside a traced step: a tensor seed, no retrace.
    run = tf.function(lambda x, y, seed: attack.perturb(model, x, y, seed=seed))
    d, e, f = (
        np.asarray(run(x, y, tf.constant(seed, tf.int32)))
        for seed in ((3, 4), (3, 4), (3, 5))
    )
    np.testing.assert_array_equal(d, e)
    assert not np.array_equal(d, f)
    assert run.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(
    "norm,eps,targeted", [("linf", 0.1, True), ("l2", 0.4, False)]
)
def test_fab_success_on_the_hadamard_model(
    norm, eps, targeted, hadamard_problem
):
    model, _, x, y, targets = hadamard_problem
    labels = targets if targeted else y
    attack = FAB(eps=eps, norm=norm, steps=20, targeted=targeted)
    x_adv = np.asarray(attack(model, x, labels))
    predicted = np.argmax(model(x_adv), axis=1)
    success = predicted == targets if targeted else predicted != y
    assert success.mean() > 0.9
    found = np.linalg.norm(x_adv - x, ord=ORD[norm], axis=1)
    assert np.all(found <= eps + 1e-6)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_fab_stays_in_the_value_range(generic_problem):
    model, _, x, y = generic_problem
    x = np.clip((x - 0.3) * 2.5, 0.0, 1.0)  # inputs on the box faces
    attack = FAB(eps=0.5, steps=20, value_range=(0.0, 1.0))
    x_adv = np.asarray(attack(model, x, y))
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.abs(x_adv - x).max() <= 0.5 + 1e-6
    assert np.mean(np.argmax(model(x_adv), axis=1) != y) > 0.5


def test_fab_config_round_trip():
    attack = FAB(
        eps=0.2,
        steps=7,
        restarts=2,
        target_classes=3,
        alpha_max=0.2,
        eta=1.1,
        beta=0.8,
        norm="l2",
        targeted=True,
        seed=5,
    )
    rebuilt = TestCase().run_serialization_test(attack)
    assert rebuilt.get_config() == attack.get_config()
    assert "loss" not in attack.get_config()


def test_fab_rejects_invalid_arguments():
    for kwargs in (
        {"alpha_max": 1.5},
        {"beta": 1.0},
        {"beta": 0.0},
        {"eta": 0.9},
        {"steps": 0},
        {"target_classes": 0},
        {"norm": "l1"},
    ):
        with pytest.raises(ValueError):
            FAB(**kwargs)
