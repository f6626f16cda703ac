"""APGD and APGDT against independent references and the attack checklist.

The references follow AutoAttack's `autopgd_base.py` line by line in
float64 numpy on linear models z = x W + b, whose loss gradients are known
in closed form: the start, the momentum step, the projection, the
checkpoints (a stored loss history, as there) and the bookkeeping of the
best and the misclassified points. The checkpoint rule is also driven
directly with scripted loss sequences.
"""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_adv._random import fold_seed
from keras_adv.attacks import ModelLogits
from keras_adv.attacks._apgd import APGD
from keras_adv.attacks._apgd import checkpoint_schedule
from keras_adv.attacks._apgd_targeted import APGDT
from keras_adv.losses import dlr_loss
from keras_adv.losses import get as get_loss
from keras_adv.losses import register_attack_loss
from keras_adv.losses import targeted_dlr_loss
from keras_adv.testing import TestCase
from keras_adv.testing import linear_classifier

RNG = np.random.default_rng(7)
W = RNG.normal(size=(12, 5)).astype("float32")
B = RNG.normal(size=(5,)).astype("float32")
X = RNG.uniform(0.1, 0.9, size=(40, 12)).astype("float32")
Y = np.argmax(X @ W + B, axis=1).astype("int32")
SEED = (3, 4)


# ------------------------------------------------------------ references
def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _loss_and_grad(x, y, loss):
    """Per-sample loss of z = x W + b and its input gradient (float64)."""
    z = x @ W.astype("float64") + B
    n = np.arange(len(y))
    if loss == "ce":
        p = _softmax(z)
        value = -np.log(p[n, y])
        p[n, y] -= 1.0
        dz = p
    else:  # dlr: -(z_y - z_other) / (z_pi1 - z_pi3)
        # Without the library's + 1e-12: float32 cannot resolve it here,
        # and in float64 it would turn DLR's plateaus (DLR = 1 exactly
        # while y is third) into slopes that change the checkpoint counts.
        order = np.argsort(-z, axis=1)
        other = np.where(order[:, 0] == y, order[:, 1], order[:, 0])
        gap = z[n, y] - z[n, other]
        spread = z[n, order[:, 0]] - z[n, order[:, 2]]
        value = -gap / spread
        dz = np.zeros_like(z)
        dz[n, y] -= 1.0 / spread
        dz[n, other] += 1.0 / spread
        # gap / spread / spread: exactly 1 / spread on DLR's plateau (y
        # third, where the loss is constant 1), so the gradient there is
        # exactly zero, as it is analytically.
        dz[n, order[:, 0]] += gap / spread / spread
        dz[n, order[:, 2]] -= gap / spread / spread
    return value, dz @ W.T.astype("float64"), z


def _ascent(g, norm):
    if norm == "linf":
        return np.sign(g)
    return g / np.maximum(np.sqrt((g**2).sum(axis=1, keepdims=True)), 1e-12)


def _project(p, x, eps, norm):
    d = p - x
    if norm == "linf":
        d = np.clip(d, -eps, eps)
    else:
        n = np.sqrt((d**2).sum(axis=1, keepdims=True))
        d = d * np.minimum(1.0, eps / np.maximum(n, 1e-12))
    return np.clip(x + d, 0.0, 1.0)


def reference_checkpoint_iterations(steps):
    """The reference's counter loop: iterations after which it checks."""
    k = max(int(0.22 * steps), 1)
    k_min, k_decr = max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    done, counter = [], 0
    for i in range(steps):
        counter += 1
        if counter == k:
            done.append(i + 1)
            k, counter = max(k - k_decr, k_min), 0
    return done


def reference_decisions(losses, steps, rho=0.75):
    """Checkpoint decisions from a loss history, as in `autopgd_base.py`.

    `losses[0]` is the loss at the start, `losses[i + 1]` after iteration
    `i`. The one difference from the reference: the first window's first
    step is compared with the start (the paper's condition; the reference
    reads an unwritten row of zeros there).
    """
    losses = np.asarray(losses, "float64")
    k = max(int(0.22 * steps), 1)
    k_min, k_decr = max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    best = losses[0].copy()
    best_last, reduced_last = best.copy(), np.ones(best.shape, bool)
    decisions, counter = [], 0
    for i in range(steps):
        best = np.maximum(best, losses[i + 1])
        counter += 1
        if counter == k:
            rises = sum(
                losses[i + 1 - c] > losses[i - c] for c in range(k)
            )  # the k steps since the last checkpoint
            halve = (rises <= k * rho) | (~reduced_last & (best_last >= best))
            reduced_last, best_last = halve, best.copy()
            decisions.append(halve)
            k, counter = max(k - k_decr, k_min), 0
    return np.array(decisions)


def reference_run(x, y, start, eps, steps, norm, loss, rho=0.75):
    """One APGD run (`attack_single_run` of the reference), float64."""
    x = x.astype("float64")
    x_adv = start.astype("float64").copy()
    value, grad, z = _loss_and_grad(x_adv, y, loss)
    robust = z.argmax(axis=1) == y
    x_best, x_found = x_adv.copy(), x_adv.copy()
    grad_best, loss_best = grad.copy(), value.copy()
    history = np.zeros((steps + 1, len(y)))
    history[0] = value
    step = 2.0 * eps * np.ones((len(y), 1))
    x_old = x_adv.copy()
    k = max(int(0.22 * steps), 1)
    k_min, k_decr = max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    best_last, reduced_last = loss_best.copy(), np.ones(len(y), bool)
    counter, decisions = 0, []
    for i in range(steps):
        momentum, x_old = x_adv - x_old, x_adv.copy()
        a = 0.75 if i > 0 else 1.0
        z1 = _project(x_adv + step * _ascent(grad, norm), x, eps, norm)
        x_adv = _project(
            x_adv + (z1 - x_adv) * a + momentum * (1 - a), x, eps, norm
        )
        value, grad, z = _loss_and_grad(x_adv, y, loss)
        correct = z.argmax(axis=1) == y
        robust &= correct
        x_found[~correct] = x_adv[~correct]
        history[i + 1] = value
        up = value > loss_best
        x_best[up], grad_best[up], loss_best[up] = (
            x_adv[up],
            grad[up],
            value[up],
        )
        counter += 1
        if counter == k:
            rises = sum(history[i + 1 - c] > history[i - c] for c in range(k))
            halve = (rises <= k * rho) | (
                ~reduced_last & (best_last >= loss_best)
            )
            reduced_last, best_last = halve, loss_best.copy()
            step[halve] /= 2.0
            x_adv[halve], grad[halve] = x_best[halve], grad_best[halve]
            decisions.append(halve)
            k, counter = max(k - k_decr, k_min), 0
    return {
        "success": ~robust,
        "x_adv": x_found,
        "x_best": x_best,
        "loss_best": loss_best,
        "step_size": step[:, 0],
        "decisions": np.array(decisions),
    }


def _start(attack, x, eps, seed=SEED, restart=0):
    x = tf.constant(x)
    noise = attack.start_noise(x, fold_seed(tf.constant(seed), restart))
    return np.asarray(attack.start_point(x, eps, noise))


def _run_once(attack, model, x, y, eps, start):
    """`attack.run_once`, eagerly.

    Eager, not traced: graph rewrites change the rounding of DLR's
    gradient on its plateau (y third, loss constant 1), which is exactly
    zero analytically, in eager TensorFlow and in the reference; in a graph
    its sign is rounding noise that L-inf steps follow.
    """
    eps_vec = tf.fill([len(x)], tf.constant(eps, tf.float32))
    out = attack.run_once(
        ModelLogits(model),
        tf.constant(x),
        tf.constant(y, tf.int32),
        eps_vec,
        tf.constant(start),
    )
    return {key: np.asarray(value) for key, value in out.items()}


# -------------------------------------------------------------- schedule
def test_checkpoint_schedule_for_100_iterations():
    schedule = checkpoint_schedule(100)
    assert [done for done, _ in schedule] == [22, 41, 57, 70, 80, 87, 93, 99]
    assert [window for _, window in schedule] == [22, 19, 16, 13, 10, 7, 6, 6]


@pytest.mark.parametrize("steps", [1, 5, 10, 30, 57, 100, 250, 1000])
def test_checkpoint_schedule_matches_the_reference_counter(steps):
    done = [d for d, _ in checkpoint_schedule(steps)]
    assert done == reference_checkpoint_iterations(steps)


def test_checkpoint_schedule_follows_the_paper_fractions():
    # p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)
    p = [0.0, 0.22]
    while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1.0:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    done = [d for d, _ in checkpoint_schedule(1000)]
    np.testing.assert_allclose(np.array(done) / 1000, p[1:], atol=1e-9)


# -------------------------------------------------- checkpoint decisions
def _scripted_run(scripts, steps=100, eps=0.1):
    """Runs APGD on a model with zero weights (the iterate never moves)
    where the objective replays `scripts[:, call]`: returns the final step
    sizes, i.e. the checkpoint decisions."""
    scripts = np.asarray(scripts, "float32")
    model = linear_classifier(np.zeros((2, 3), "float32"))
    calls = []

    def objective(logits):
        value = scripts[:, len(calls)]
        calls.append(1)
        return ops.convert_to_tensor(value) + 0.0 * logits[:, 0]

    attack = APGD(eps=eps, steps=steps)
    x = np.full((len(scripts), 2), 0.5, "float32")
    y = tf.zeros([len(scripts)], tf.int32)
    eps_vec = tf.fill([len(scripts)], eps)
    out = attack.run_once(
        ModelLogits(model),
        tf.constant(x),
        y,
        eps_vec,
        tf.constant(x),
        objective,
    )
    assert len(calls) == steps + 1  # eager: one call per forward pass
    return np.asarray(out["step_size"])


def _halvings(step_size, eps=0.1):
    return np.round(np.log2(2 * eps / step_size)).astype(int)


def _rising_windows(pattern, start=0.0):
    """A loss history: per window of the 100-step schedule, `pattern[j]`
    is "up" (rises every step, new best) or "dip" (drops below the best,
    then rises every remaining step without reaching it)."""
    losses, best = [start], start
    windows = [w for _, w in checkpoint_schedule(100)]
    for kind, window in zip(pattern, windows):
        if kind == "up":
            losses += [best + j for j in range(1, window + 1)]
            best = losses[-1]
        else:
            low = best - window - 1
            losses += [low + j for j in range(window)]
    return losses + [losses[-1]] * (101 - len(losses))


def test_checkpoint_decisions_on_scripted_losses():
    up = _rising_windows(["up"] * 8)  # rises every step, always improves
    flat = [1.0] * 101  # never rises
    # Rises in every step after a dip, but never above the best: halves
    # only where the previous checkpoint did not (second condition).
    alternate = _rising_windows(["up"] + ["dip"] * 7)
    # Window 1 has 22 steps, limit 0.75 * 22 = 16.5; window 3 has 16 steps,
    # limit exactly 12 ("at most": 12 rises halve, 13 do not).
    at_16 = [0.0] + list(range(1, 17)) + [16.0] * 84
    at_17 = [0.0] + list(range(1, 18)) + [17.0] * 83
    w3 = _rising_windows(["up", "up"])[:42]
    w3_12 = w3 + [w3[-1] + j for j in range(1, 13)] + [w3[-1] + 12] * 47
    w3_13 = w3 + [w3[-1] + j for j in range(1, 14)] + [w3[-1] + 13] * 46
    # The first step is compared with the start (the paper's condition):
    # from 10 down to 5, then 16 rises: 16 <= 16.5 halves. (The reference
    # code compares the first step with 0 instead and would count 17.)
    first = [10.0, 5.0] + [5.0 + j for j in range(1, 17)] + [21.0] * 83
    scripts = [up, flat, alternate, at_16, at_17, w3_12, w3_13, first]
    halvings = _halvings(_scripted_run(scripts))
    expected = [
        reference_decisions(np.array(s)[:, None], 100).sum() for s in scripts
    ]
    np.testing.assert_array_equal(halvings, expected)
    # The same counts by hand, checkpoint by checkpoint:
    # up: never; flat: all 8; alternate: checkpoints 2, 4, 6, 8; at_16:
    # all 8; at_17: 2..8; w3_12: 3..8; w3_13: 4..8; first: all 8.
    np.testing.assert_array_equal(halvings, [0, 8, 4, 8, 7, 6, 5, 8])


# ----------------------------------------------------- the whole run
@pytest.mark.parametrize(
    "norm,eps,loss,steps",
    [
        ("linf", 0.05, "ce", 100),
        ("linf", 0.05, "dlr", 100),
        ("linf", 0.05, "dlr", 30),
        ("l2", 0.3, "ce", 5),
    ],
)
def test_run_matches_the_reference(norm, eps, loss, steps):
    # L2 runs are compared over few steps: once an L2 iterate converges
    # the loss creeps up by less than float32 resolves, and the "loss
    # rose" counts become rounding noise in either precision.
    model = linear_classifier(W, B)
    attack = APGD(eps=eps, steps=steps, norm=norm, loss=loss)
    start = _start(attack, X, eps)
    ours = _run_once(attack, model, X, Y, eps, start)
    ref = reference_run(X, Y, start, eps, steps, norm, loss)
    np.testing.assert_array_equal(ours["success"], ref["success"])
    for key in ("x_adv", "x_best", "loss_best"):
        np.testing.assert_allclose(ours[key], ref[key], atol=2e-5, err_msg=key)
    # The checkpoint decisions agree while steps are large enough for
    # float32 to see the loss move; after many halvings (steps ~1e-5)
    # near-ties decide "the loss rose", in either precision.
    large = ref["step_size"] > 1e-4
    np.testing.assert_allclose(
        ours["step_size"][large], ref["step_size"][large], rtol=1e-6
    )
    assert np.all(ours["step_size"][~large] <= 2e-4)
    # The case exercises the decisions: some halvings, some not.
    assert 0 < ref["decisions"].mean() < 1 or steps == 100


def test_start_is_on_the_boundary_of_the_ball():
    x = RNG.uniform(0.3, 0.7, size=(16, 12)).astype("float32")
    for norm, eps in (("linf", 0.1), ("l2", 0.25)):
        attack = APGD(eps=eps, norm=norm)
        start = _start(attack, x, eps)
        delta = start.astype("float64") - x
        if norm == "linf":
            np.testing.assert_allclose(np.abs(delta).max(axis=1), eps, 1e-5)
            # A scaled uniform draw, not a vertex of the cube.
            assert np.mean(np.abs(delta) < 0.9 * eps) > 0.5
        else:
            norms = np.sqrt((delta**2).sum(axis=1))
            np.testing.assert_allclose(norms, eps, rtol=1e-5)


def test_attack_matches_the_reference_with_restarts_on_robust_samples():
    model = linear_classifier(W, B)
    eps, steps = 0.05, 20
    attack = APGD(eps=eps, steps=steps, restarts=3, loss="dlr")
    # Eagerly, for DLR (see _run_once); the gathered subsets are the same.
    ours = attack.perturb(model, tf.constant(X), Y, seed=tf.constant(SEED))
    expected, robust = X.astype("float64").copy(), np.ones(len(X), bool)
    fooled_by = np.full(len(X), -1)
    for restart in range(3):
        start = _start(attack, X, eps, restart=restart)
        ref = reference_run(X, Y, start, eps, steps, "linf", "dlr")
        new = robust & ref["success"]
        expected[new], fooled_by[new] = ref["x_adv"][new], restart
        robust &= ~ref["success"]
    np.testing.assert_allclose(np.asarray(ours), expected, atol=2e-5)
    # Later restarts fooled samples the first run did not, and left the
    # first run's results untouched.
    assert (fooled_by == 0).any() and (fooled_by > 0).any()


def test_returns_the_misclassified_iterate_not_the_last_one():
    # One feature; class 1 iff x > 0.5. The loss peaks at x = 0.49 (still
    # class 0), so the run ends near 0.49, but on its way it passes the
    # boundary of the ball at 0.55, which is misclassified.
    model = linear_classifier(np.array([[0.0, 10.0]]), np.array([0.0, -5.0]))

    def peaked(labels, logits):
        return -ops.square(logits[:, 1] - logits[:, 0] + 0.1)

    register_attack_loss("test_apgd_peaked", peaked)
    x = np.full((6, 1), 0.45, "float32")
    y = np.zeros(6, "int32")
    attack = APGD(eps=0.1, steps=30, loss="test_apgd_peaked", seed=0)
    x_adv = np.asarray(attack(model, x, y))
    assert np.all(x_adv > 0.5)  # misclassified
    out = _run_once(attack, model, x, y, 0.1, _start(attack, x, 0.1))
    np.testing.assert_allclose(out["x_last"], 0.49, atol=1e-3)
    np.testing.assert_allclose(out["x_best"], 0.49, atol=1e-3)
    assert np.all(out["success"]) and np.all(out["x_adv"] > 0.5)


def test_robust_samples_keep_the_clean_input():
    model = linear_classifier(W, B)
    x_adv = np.asarray(APGD(eps=0.02, steps=10, seed=0)(model, X, Y))
    fooled = np.argmax(x_adv @ W + B, axis=1) != Y
    assert 0 < fooled.sum() < len(X)
    np.testing.assert_array_equal(x_adv[~fooled], X[~fooled])
    # Already misclassified inputs are not attacked.
    wrong = (Y + 1) % 5
    x_adv = np.asarray(APGD(eps=0.02, steps=10, seed=0)(model, X, wrong))
    np.testing.assert_array_equal(x_adv, X)


def test_masked_path_equals_the_subset_path():
    # jit_compile=True runs restarts on the whole batch with masks; run
    # without XLA, it must give exactly the gathered-subset result.
    model = linear_classifier(W, B)
    results = []
    for jit in (False, True):
        attack = APGD(eps=0.05, steps=10, restarts=3, jit_compile=jit)
        fn = tf.function(
            lambda x, y, a=attack: a.perturb(
                model, x, y, seed=tf.constant(SEED)
            )
        )
        results.append(np.asarray(fn(tf.constant(X), tf.constant(Y))))
    np.testing.assert_array_equal(results[0], results[1])


# ---------------------------------------------------------------- losses
def test_dlr_closed_form():
    logits = np.array(
        [[3.0, 1.0, 0.0, -2.0], [3.0, 1.0, 0.0, -2.0], [0.0, 2.0, 2.0, 1.0]],
        "float32",
    )
    labels = np.array([0, 2, 1])
    # -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)
    expected = [-(3 - 1) / 3, -(0 - 3) / 3, -(2 - 2) / (2 - 1)]
    np.testing.assert_allclose(dlr_loss(labels, logits), expected, rtol=1e-6)
    # Invariant to shifting and positive scaling of the logits.
    np.testing.assert_allclose(
        dlr_loss(labels, 7.0 * logits - 3.0), expected, rtol=1e-5
    )
    assert get_loss("dlr") is dlr_loss


def test_targeted_dlr_closed_form():
    logits = np.array([[4.0, 3.0, 1.0, 0.0, -1.0]] * 2, "float32")
    labels, targets = np.array([0, 3]), np.array([2, 0])
    # -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)
    expected = [-(4 - 1) / (4 - 0.5), -(0 - 4) / (4 - 0.5)]
    np.testing.assert_allclose(
        targeted_dlr_loss(labels, logits, targets), expected, rtol=1e-6
    )


def test_dlr_gradient_matches_the_reference():
    model = linear_classifier(W, B)
    x = X + RNG.normal(0.0, 0.3, X.shape).astype("float32")
    value, grad = ModelLogits(model).value_and_input_gradient(
        lambda logits: dlr_loss(Y, logits), tf.constant(x)
    )
    ref_value, ref_grad, _ = _loss_and_grad(x, Y, "dlr")
    np.testing.assert_allclose(value, ref_value, atol=1e-5)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-4)


def test_dlr_needs_three_and_targeted_dlr_four_classes():
    with pytest.raises(ValueError, match="at least 3 classes"):
        dlr_loss(np.array([0]), np.array([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="at least 4 classes"):
        targeted_dlr_loss(
            np.array([0]), np.array([[1.0, 0.0, 2.0]]), np.array([1])
        )
    two = linear_classifier(np.ones((3, 2), "float32"))
    with pytest.raises(ValueError, match="at least 3 classes"):
        APGD(eps=0.1, steps=2, loss="dlr")(two, np.zeros((1, 3), "float32"))
    three = linear_classifier(np.eye(3, dtype="float32"))
    with pytest.raises(ValueError, match="at least 4 classes"):
        APGDT(eps=0.1, steps=2)(three, np.full((1, 3), 0.5, "float32"))


# ----------------------------------------------------------------- APGDT
def test_apgdt_attacks_the_most_likely_wrong_class(hadamard_problem):
    model, w, x, y, _ = hadamard_problem
    n = np.arange(len(y))
    second = np.argsort(-(x @ w), axis=1)[:, 1]
    for eps, rate in ((0.1, 0.95), (0.05, 0.8)):
        attack = APGDT(eps=eps, steps=20, num_targets=1, seed=0)
        z = np.asarray(attack(model, x, y)) @ w
        fooled = np.argmax(z, axis=1) != y
        assert fooled.mean() > rate
        # The target (the 2nd class of the clean prediction) beat the true
        # class wherever the attack succeeded; the last misclassified
        # iterate may be classified as a third class.
        assert np.all(z[n, second][fooled] > z[n, y][fooled])
    # Three targets (capped at classes - 1) fool at least as many samples:
    # later targets only attack the samples still robust.
    z = np.asarray(APGDT(eps=0.05, steps=20, seed=0)(model, x, y)) @ w
    assert np.all((np.argmax(z, axis=1) != y)[fooled])


def test_apgdt_targets_are_capped_and_config_round_trips():
    attack = APGDT(eps=0.1, steps=3, num_targets=9, seed=1)
    config = attack.get_config()
    assert "targeted" not in config and "loss" not in config
    assert config["num_targets"] == 9 and config["steps"] == 3
    assert APGDT.from_config(config).get_config() == config
    model = linear_classifier(W, B)  # 5 classes: 4 targets at most
    x_adv = np.asarray(attack(model, X, Y))
    assert np.abs(x_adv - X).max() <= 0.1 + 1e-6


def test_invalid_arguments():
    for kwargs in (
        {"steps": 0},
        {"restarts": 0},
        {"rho": 1.5},
        {"rho": -0.1},
        {"norm": "l1"},
    ):
        with pytest.raises(ValueError):
            APGD(**kwargs)
    with pytest.raises(ValueError):
        APGDT(num_targets=0)
    with pytest.raises(ValueError, match="APGDT"):
        APGD(targeted=True, loss="dlr")


# ------------------------------------------------------------- checklist
class APGDChecklistTest(TestCase):
    # Restarts are AutoAttack's: they only rerun still-robust samples, so
    # the checklist's "most samples change" restart check does not apply;
    # test_attack_matches_the_reference_with_restarts_on_robust_samples
    # checks them against the reference. XLA draws other random numbers,
    # so the jit check compares the ball only (on the stateless path: the
    # gathered subsets inside the caller's XLA-compiled function).
    def test_apgd(self):
        self.run_attack_test(
            APGD,
            {"steps": 10},
            random=True,
            restarts=0,
            paths=("eager",),
            run_jit_check=False,
        )

    def test_apgd_dlr_stateless(self):
        # The stateless seed and XLA; the rest is seeding-independent.
        self.run_attack_test(
            APGD,
            {"steps": 10, "loss": "dlr"},
            random=True,
            restarts=0,
            paths=("stateless",),
            norms=("linf",),
            targeted=False,
            run_identity_check=False,
            run_bound_check=False,
            run_validation_check=False,
            run_serialization_check=False,
        )

    def test_apgdt(self):
        self.run_attack_test(
            APGDT,
            {"steps": 10},
            random=True,
            restarts=0,
            paths=("eager",),
            norms=("l2",),
            run_jit_check=False,
        )
