"""Square Attack: the reference's schedule and patterns, query accounting,
forward passes only, the ball and the value range, seeds, serialisation.
"""

import doctest
import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv import attacks
from keras_adv.attacks import _square_schedule
from keras_adv.attacks._square import Square
from keras_adv.attacks._square_schedule import meta_pseudo_gaussian
from keras_adv.attacks._square_schedule import p_selection
from keras_adv.attacks._square_schedule import window_side
from keras_adv.testing import TestCase
from keras_adv.testing import linear_classifier
from keras_adv.testing import small_cnn


def _np(t):
    return np.asarray(t)


def _fooled(model, x_adv, y):
    return np.argmax(_np(model(x_adv)), axis=1) != y


def _distances(x, x_adv):
    delta = (_np(x_adv).astype("float64") - x).reshape(len(x), -1)
    return np.abs(delta).max(axis=1), np.sqrt(np.square(delta).sum(axis=1))


# --------------------------------------------------------------- models
class _NoGradient(keras.layers.Layer):
    """The identity, but asking for its gradient raises."""

    def call(self, x):
        @tf.custom_gradient
        def identity(t):
            def grad(upstream):
                raise RuntimeError("a gradient was requested")

            return tf.identity(t), grad

        return identity(x)


class _Round(keras.layers.Layer):
    """Rounds to multiples of 0.1: the gradient is zero everywhere."""

    def call(self, x):
        return ops.round(x * 10.0) / 10.0


class _Counter(keras.layers.Layer):
    """The identity; counts the samples it evaluates."""

    def build(self, input_shape):
        self.rows = self.add_weight(
            shape=(), initializer="zeros", trainable=False
        )

    def call(self, x):
        self.rows.assign_add(ops.cast(ops.shape(x)[0], "float32"))
        return x


class _Distance(keras.layers.Layer):
    """Logits `[radius - ||x - 0.5||, 0]`: class 1 outside the ball."""

    def __init__(self, norm, radius, **kwargs):
        super().__init__(**kwargs)
        self.norm = norm
        self.radius = radius

    def call(self, x):
        delta = ops.reshape(x - 0.5, (ops.shape(x)[0], -1))
        if self.norm == "linf":
            size = ops.max(ops.abs(delta), axis=1, keepdims=True)
        else:
            size = ops.sqrt(ops.sum(delta * delta, axis=1, keepdims=True))
        return ops.concatenate([self.radius - size, 0.0 * size], axis=1)


class _LabelOnly(keras.Model):
    """Returns only the predicted label, one-hot (scores carry nothing)."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, x):
        logits = self.inner(x)
        return ops.one_hot(ops.argmax(logits, axis=-1), logits.shape[-1])


def _hadamard_with(layer, w):
    model = keras.Sequential(
        [keras.Input((16,)), layer, keras.layers.Dense(4, use_bias=False)]
    )
    model.layers[-1].set_weights([w])
    return model


# ------------------------------------------------------------- schedule
P = 0.8
# The reference's p at the breakpoints (10,000 queries: no rescaling).
SCHEDULE_10000 = {
    0: P,
    10: P,
    11: P / 2,
    50: P / 2,
    51: P / 4,
    200: P / 4,
    201: P / 8,
    500: P / 8,
    501: P / 16,
    1000: P / 16,
    1001: P / 32,
    2000: P / 32,
    2001: P / 64,
    4000: P / 64,
    4001: P / 128,
    6000: P / 128,
    6001: P / 256,
    8000: P / 256,
    8001: P / 512,
    9999: P / 512,
}
# 5,000 queries: iteration i is i * 2 on the reference's scale.
SCHEDULE_5000 = {
    5: P,
    6: P / 2,
    25: P / 2,
    26: P / 4,
    100: P / 4,
    101: P / 8,
    250: P / 8,
    251: P / 16,
    500: P / 16,
    501: P / 32,
    1000: P / 32,
    1001: P / 64,
    2000: P / 64,
    2001: P / 128,
    3000: P / 128,
    3001: P / 256,
    4000: P / 256,
    4001: P / 512,
    4999: P / 512,
}


@pytest.mark.parametrize(
    "n_queries,expected", [(10000, SCHEDULE_10000), (5000, SCHEDULE_5000)]
)
def test_p_schedule_matches_the_reference_at_the_breakpoints(
    n_queries, expected
):
    for iteration, p in expected.items():
        assert p_selection(iteration, n_queries) == pytest.approx(p), iteration
    assert p_selection(4001, 5000, p_init=0.3) == pytest.approx(0.3 / 512)
    with pytest.raises(ValueError, match="iteration"):
        p_selection(-1, 5000)


def test_p_schedule_without_rescaling_is_autoattacks_standard():
    # AutoAttack's standard version: 5,000 queries, breakpoints at raw
    # iteration numbers, so p never goes below p_init / 128.
    for iteration, p in SCHEDULE_10000.items():
        if iteration < 5000:
            assert p_selection(iteration, 5000, rescale=False) == p
    assert p_selection(4999, 5000, rescale=False) == P / 128
    schedule = _square_schedule._Schedule(5000, 0.8, "linf", 28, 28, 1, False)
    np.testing.assert_array_equal(
        schedule.starts, [11, 51, 201, 501, 1001, 2001, 4001, 5000, 5000]
    )


def test_window_sides_and_phase_starts():
    # round(sqrt(p * 784)) for p = 0.8 / 2**k on MNIST; L2 odd and >= 3.
    linf = [25, 18, 13, 9, 6, 4, 3, 2, 2, 1]
    l2 = [25, 19, 13, 9, 7, 5, 3, 3, 3, 3]
    for k in range(10):
        assert window_side(0.8 / 2**k, 784, 1) == linf[k]
        assert window_side(0.8 / 2**k, 784, 1, "l2") == l2[k]
    # CIFAR-10: per channel, 32 x 32.
    assert window_side(0.8, 3072, 3) == 29
    assert window_side(0.4, 3072, 3) == 20
    # Python's round: half to even, as the reference.
    assert window_side(0.25, 25, 1) == 2
    schedule = _square_schedule._Schedule(5000, 0.8, "linf", 28, 28, 1)
    starts = [6, 26, 101, 251, 501, 1001, 2001, 3001, 4001]
    np.testing.assert_array_equal(schedule.starts, starts)
    np.testing.assert_array_equal(schedule.sides_h, linf)
    # A 1 x 16 vector: windows are cut to one row.
    schedule = _square_schedule._Schedule(100, 0.8, "linf", 1, 16, 1)
    assert set(schedule.sides_h) == {1}
    assert schedule.sides_w[0] == 4


def _nested_rectangles(rows, cols):
    """The reference's loop: rectangle k, centred, adds 1 / (k + 1)**2."""
    delta = np.zeros((rows, cols))
    top, left = rows // 2, cols // 2
    for k in range(max(rows // 2, cols // 2) + 1):
        delta[
            max(top - k, 0) : min(top + k + 1, rows),
            max(left - k, 0) : min(left + k + 1, cols),
        ] += 1.0 / (k + 1) ** 2
    return delta / np.sqrt(np.sum(delta**2))


@pytest.mark.parametrize(
    "rows,cols",
    [(1, 1), (2, 2), (3, 3), (5, 5), (8, 8), (9, 9), (1, 5), (4, 7)],
)
def test_meta_pseudo_gaussian_is_the_reference_pattern(rows, cols):
    top = rows // 2
    halves = [_nested_rectangles(top, cols)] if top else []
    halves.append(-_nested_rectangles(rows - top, cols))
    expected = np.concatenate(halves, axis=0)
    expected /= np.sqrt(np.sum(expected**2))
    np.testing.assert_allclose(meta_pseudo_gaussian(rows, cols), expected)
    if rows == cols:  # the other split is the transposed pattern
        np.testing.assert_allclose(
            meta_pseudo_gaussian(rows, cols, 1), expected.T
        )
    # Hand values: a 3 x 3 window's top row is a bump (1/4, 5/4, 1/4).
    pattern = meta_pseudo_gaussian(3, 3)
    np.testing.assert_allclose(
        pattern[0] / pattern[0, 0], [1.0, 5.0, 1.0], rtol=1e-12
    )


# ------------------------------------------------ ball, range, queries
@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
def test_inside_ball_and_value_range(norm, eps):
    rng = np.random.default_rng(0)
    model = small_cnn(input_shape=(10, 10, 3), num_classes=3, width=4)
    x = rng.uniform(-1.0, 1.0, size=(16, 10, 10, 3)).astype("float32")
    x[:, 0] = 1.0  # on the bounds: the range clips
    x[:, -1] = -1.0
    y = np.argmax(_np(model(x)), axis=1)
    attack = Square(
        eps=eps, norm=norm, n_queries=100, value_range=(-1, 1), seed=0
    )
    x_adv, queries = attack.perturb_with_queries(model, x, y)
    x_adv, queries = _np(x_adv), _np(queries)
    linf, l2 = _distances(x, x_adv)
    distance = linf if norm == "linf" else l2
    assert np.all(distance <= eps * (1 + 1e-6))
    assert x_adv.min() >= -1.0 and x_adv.max() <= 1.0
    fooled = _fooled(model, x_adv, y)
    assert 0 < fooled.sum() < len(x)
    assert np.all(distance[fooled] > 0.5 * eps)
    # Samples still robust come back unchanged, having spent the budget.
    np.testing.assert_array_equal(x_adv[~fooled], x[~fooled])
    np.testing.assert_array_equal(queries[~fooled], 100)
    assert np.all((queries[fooled] >= 1) & (queries[fooled] <= 100))


def test_l2_updates_keep_the_norm_at_eps():
    # Without clipping by the value range every L2 point has norm eps:
    # start and 60 chained updates through every phase of the schedule.
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.0, 1.0, size=(6, 10, 10, 2)).astype("float32")
    attack = Square(eps=2.0, norm="l2", n_queries=60, value_range=(-9, 9))
    schedule = _square_schedule._Schedule(60, 0.8, "l2", 10, 10, 2)
    eps = tf.fill((6, 1, 1, 1), 2.0)
    seed = tf.constant([3, 4])
    best = attack._l2_start(x, tf.fill((6,), 2.0), seed)
    norms = [_distances(x, best)[1]]
    for i in range(59):
        signs = _square_schedule._signs(
            (6, 2), _random.fold_seed(seed, 100 + i)
        )
        best = attack._l2_candidate(
            x,
            best,
            eps,
            signs,
            schedule.phase(i),
            _random.fold_seed(seed, i),
            schedule,
        )
        norms.append(_distances(x, best)[1])
    np.testing.assert_allclose(np.array(norms), 2.0, rtol=1e-5)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("restarts", [1, 3])
def test_query_counts_are_exact(norm, restarts):
    # Sample 0 leaves the radius-0.1 ball at its start (1 query); sample 1
    # is misclassified already (0 queries); sample 2 cannot move (eps 0:
    # the whole budget, in every restart).
    model = keras.Sequential(
        [keras.Input((6, 6, 2)), _Distance(norm, radius=0.1)]
    )
    x = np.full((3, 6, 6, 2), 0.5, "float32")
    x[1] += 0.2
    y = np.zeros(3, "int32")
    attack = Square(norm=norm, n_queries=30, restarts=restarts, seed=0)
    x_adv, queries = attack.perturb_with_queries(
        model, x, y, eps=np.array([0.2, 0.2, 0.0], "float32")
    )
    np.testing.assert_array_equal(_np(queries), [1, 0, 30 * restarts])
    x_adv = _np(x_adv)
    np.testing.assert_array_equal(x_adv[1:], x[1:])
    linf, l2 = _distances(x, x_adv)
    assert (linf if norm == "linf" else l2)[0] == pytest.approx(0.2)


def test_model_evaluates_only_still_robust_samples(hadamard_problem):
    # Forward passes: the clean batch once, then exactly one sample per
    # query (gathered); the masked (XLA) form gives the same result.
    _, w, x, y, _ = hadamard_problem
    x, y = x[:48], y[:48]
    counter = _Counter()
    model = _hadamard_with(counter, w)
    attack = Square(eps=0.05, n_queries=300, seed=0)
    attack.perturb_with_queries(model, x[:2], y[:2])  # trace, model check
    counter.rows.assign(0.0)
    x_adv, queries = attack.perturb_with_queries(model, x, y, seed=5)
    queries = _np(queries)
    assert float(counter.rows.numpy()) == len(x) + queries.sum()
    assert queries.max() == 300 and queries.min() < 300
    masked = Square(eps=0.05, n_queries=300, seed=0)
    masked._compact = False
    x_masked, q_masked = masked.perturb_with_queries(model, x, y, seed=5)
    np.testing.assert_array_equal(_np(x_masked), _np(x_adv))
    np.testing.assert_array_equal(_np(q_masked), queries)


# ------------------------------------------------------ forward passes
@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.4)])
def test_never_requests_a_gradient(norm, eps, hadamard_problem):
    _, w, x, y, _ = hadamard_problem
    model = _hadamard_with(_NoGradient(), w)
    with pytest.raises(Exception, match="gradient was requested"):
        attacks.PGD(eps=eps, norm=norm, steps=1)(model, x[:4], y[:4])
    x_adv = Square(eps=eps, norm=norm, n_queries=200, seed=0)(model, x, y)
    assert _fooled(model, x_adv, y).mean() > 0.9


def test_breaks_a_rounding_model_with_zero_gradient(hadamard_problem):
    _, w, x, y, _ = hadamard_problem
    model = _hadamard_with(_Round(), w)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = ops.sum(model(x)[:, 0])
    gradient = tape.gradient(
        total, x, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    assert not np.any(_np(gradient))
    y = np.argmax(_np(model(x)), axis=1)
    x_adv = Square(eps=0.1, n_queries=300, seed=0)(model, x, y)
    assert _fooled(model, x_adv, y).mean() > 0.9


def test_warns_that_a_label_only_model_gives_no_signal(hadamard_problem):
    # One-hot outputs: the loss only changes when the label flips, so the
    # search is a blind random search; it warns once per model, and the
    # same model's scores do far better.
    _, w, x, y, _ = hadamard_problem
    inner = linear_classifier(w)
    model = _LabelOnly(inner, name="label_only")
    attack = Square(eps=0.05, n_queries=200, seed=0)
    with pytest.warns(UserWarning, match="one-hot labels") as record:
        blind = _fooled(inner, attack(model, x, y), y).mean()
    assert len(record) == 1 and record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attack(model, x, y)  # once per model
        scored = _fooled(inner, attack(inner, x, y), y).mean()
    assert scored > 0.85 and blind < 0.6 * scored


# ------------------------------------------------------------ success
@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.2)])
def test_hadamard_success_close_to_the_optimum(norm, eps, hadamard_problem):
    # For the linear Hadamard model the optimal attack is known in closed
    # form: class j is reachable iff z_y - z_j < eps ||w_j - w_y||_dual.
    model, w, x, y, _ = hadamard_problem
    z = x @ w
    gap = z[np.arange(len(y)), y][:, None] - z
    dual = np.abs(w[:, :, None] - w[:, None, :]).sum(0)  # L1 (L-inf dual)
    if norm == "l2":
        dual = np.sqrt(np.square(w[:, :, None] - w[:, None, :]).sum(0))
    reach = (gap < eps * dual[y]) & (np.arange(4) != y[:, None])
    optimum = reach.any(axis=1)
    x_adv = Square(eps=eps, norm=norm, n_queries=1000, seed=0)(model, x, y)
    fooled = _fooled(model, x_adv, y)
    assert not np.any(fooled & ~optimum)
    assert fooled.mean() >= 0.95 * optimum.mean()


def test_restarts_attack_the_robust_samples_again(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    one = Square(eps=0.04, n_queries=40, seed=0)
    three = Square(eps=0.04, n_queries=40, restarts=3, seed=0)
    x_one, q_one = one.perturb_with_queries(model, x, y)
    x_three, q_three = three.perturb_with_queries(model, x, y)
    fooled_one = _fooled(model, x_one, y)
    fooled_three = _fooled(model, x_three, y)
    assert np.all(fooled_three[fooled_one])
    assert fooled_three.sum() > fooled_one.sum()
    # The first run is the same; later ones add their queries.
    np.testing.assert_array_equal(
        _np(x_three)[fooled_one], _np(x_one)[fooled_one]
    )
    np.testing.assert_array_equal(
        _np(q_three)[fooled_one], _np(q_one)[fooled_one]
    )
    assert np.all(_np(q_three)[~fooled_three] == 120)


# ------------------------------------------------------- seeds, paths
def test_seeds_and_the_graph_path(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    x, y = x[:32], y[:32]
    attack = Square(eps=0.05, n_queries=50)

    def run(seed):
        x_adv, queries = attack.perturb_with_queries(model, x, y, seed=seed)
        return _np(x_adv), _np(queries)

    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])

    @tf.function
    def step(x, y, seed):
        return attack.perturb_with_queries(model, x, y, seed=seed)

    graph = step(tf.constant(x), tf.constant(y), tf.constant([3, 0]))
    np.testing.assert_array_equal(_np(graph[0]), a[0])
    np.testing.assert_array_equal(_np(graph[1]), a[1])
    np.testing.assert_array_equal(_np(attack(model, x, y)).shape, x.shape)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_eps_zero_is_identity_and_spends_the_budget(norm, hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    attack = Square(eps=0.0, norm=norm, n_queries=20, seed=0)
    x_adv, queries = attack.perturb_with_queries(model, x[:16], y[:16])
    np.testing.assert_array_equal(_np(x_adv), x[:16])
    np.testing.assert_array_equal(_np(queries), 20)


# --------------------------------------------- configuration, checklist
def test_config_round_trip(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    attack = Square(
        eps=0.05,
        n_queries=30,
        p_init=0.5,
        restarts=2,
        rescale_schedule=False,
        norm="l2",
        loss="ce",
        seed=3,
    )
    config = attack.get_config()
    assert config["n_queries"] == 30 and config["p_init"] == 0.5
    assert config["restarts"] == 2 and config["loss"] == "ce"
    assert config["rescale_schedule"] is False
    rebuilt = Square.from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(attack))),
        safe_mode=True,
    )
    assert type(restored) is Square and restored.get_config() == config
    np.testing.assert_array_equal(
        _np(restored(model, x[:8], y[:8])), _np(attack(model, x[:8], y[:8]))
    )


def test_invalid_arguments():
    for kwargs in (
        {"n_queries": 0},
        {"p_init": 0.0},
        {"p_init": 1.5},
        {"restarts": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            Square(**kwargs)
    with pytest.raises(TypeError, match="rescale_schedule"):
        Square(rescale_schedule="no")
    model = keras.Sequential(
        [
            keras.Input((2, 2, 2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    with pytest.raises(ValueError, match="static shape"):
        Square(n_queries=2)(model, np.zeros((1, 2, 2, 2, 2), "float32"))


class SquareChecklistTest(TestCase):
    def test_checklist(self):
        # Restarts and XLA have their own tests (under XLA TensorFlow draws
        # other random numbers, so results are not comparable).
        self.run_attack_test(
            Square,
            {"n_queries": 100},
            random=True,
            restarts=0,
            run_jit_check=False,
        )


@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 1.0)])
def test_xla(norm, eps, generic_problem):
    # Under XLA every query evaluates the whole batch (masks, static
    # shapes); the accounting and the ball are the same.
    model, _, x, y = generic_problem
    attack = Square(eps=eps, norm=norm, n_queries=50, seed=0, jit_compile=True)
    x_adv, queries = attack.perturb_with_queries(model, x, y)
    x_adv, queries = _np(x_adv), _np(queries)
    linf, l2 = _distances(x, x_adv)
    assert np.all((linf if norm == "linf" else l2) <= eps * (1 + 1e-6))
    fooled = _fooled(model, x_adv, y)
    assert fooled.mean() > 0.5
    np.testing.assert_array_equal(x_adv[~fooled], x[~fooled])
    np.testing.assert_array_equal(queries[~fooled], 50)
    assert np.all((queries[fooled] >= 1) & (queries[fooled] <= 50))


def test_docstring_example(monkeypatch):
    monkeypatch.setattr(attacks, "Square", Square, raising=False)
    for name in ("p_selection", "window_side", "meta_pseudo_gaussian"):
        monkeypatch.setattr(
            attacks, name, getattr(_square_schedule, name), raising=False
        )
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for obj in (Square, p_selection, window_side, meta_pseudo_gaussian):
        for test in finder.find(obj, obj.__name__, globs={}):
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
