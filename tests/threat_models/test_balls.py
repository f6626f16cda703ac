import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import threat_models
from keras_adv.threat_models import L2Ball
from keras_adv.threat_models import LinfBall

RNG = np.random.default_rng(0)


def _x(shape=(6, 5)):
    return RNG.uniform(0.2, 0.8, size=shape).astype("float32")


def test_linf_project_closed_form():
    ball = LinfBall(eps=0.1)
    x = np.array([[0.5, 0.5, 0.95]], "float32")
    x_adv = np.array([[0.9, 0.45, 1.3]], "float32")
    out = np.asarray(ball.project(x_adv, x))
    np.testing.assert_allclose(out, [[0.6, 0.45, 1.0]], atol=1e-7)


def test_l2_project_closed_form_and_inside_stays():
    ball = L2Ball(eps=1.0, value_range=(-10.0, 10.0))
    x = np.zeros((2, 2), "float32")
    x_adv = np.array([[3.0, 4.0], [0.3, 0.4]], "float32")
    out = np.asarray(ball.project(x_adv, x))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.3, 0.4]], atol=1e-6)


@pytest.mark.parametrize("cls", [LinfBall, L2Ball])
def test_per_sample_eps(cls):
    ball = cls(eps=0.5)
    x = _x((3, 4))
    far = x + 10.0
    eps = np.array([0.0, 0.05, 0.1], "float32")
    out = np.asarray(ball.project(far, x, eps=eps))
    dist = np.asarray(ball.distance(x, out))
    np.testing.assert_allclose(dist, [0.0, 0.05, 0.1], atol=1e-6)


@pytest.mark.parametrize("cls", [LinfBall, L2Ball])
def test_random_start_inside_ball_and_range(cls):
    ball = cls(eps=0.3)
    x = RNG.uniform(0.0, 1.0, size=(64, 7, 7, 1)).astype("float32")
    seed = keras.random.SeedGenerator(1)
    out = np.asarray(ball.random_start(x, seed=seed))
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.all(np.asarray(ball.distance(x, out)) <= 0.3 + 1e-6)
    assert np.asarray(ball.distance(x, out)).max() > 0.05  # really moved


@pytest.mark.parametrize("cls", [LinfBall, L2Ball])
def test_random_start_same_seed_same_result(cls):
    x = _x((4, 9))
    a = cls(eps=0.2).random_start(x, seed=keras.random.SeedGenerator(3))
    b = cls(eps=0.2).random_start(x, seed=keras.random.SeedGenerator(3))
    c = cls(eps=0.2).random_start(x, seed=keras.random.SeedGenerator(4))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_random_start_stateless_tensor_seed():
    x = _x((4, 9))
    ball = L2Ball(eps=0.2)
    s = tf.constant([7, 0], "int32")
    np.testing.assert_array_equal(
        np.asarray(ball.random_start(x, seed=s)),
        np.asarray(ball.random_start(x, seed=s)),
    )


def test_l2_random_start_fills_the_ball():
    # Uniform in a d-ball: P(||delta|| <= r * eps) = r^d, so in 2-D about
    # a quarter of the draws lie within half the radius.
    ball = L2Ball(eps=1.0, value_range=(-5.0, 5.0))
    x = np.zeros((4000, 2), "float32")
    out = ball.random_start(x, seed=keras.random.SeedGenerator(0))
    radii = np.asarray(ball.distance(x, out))
    assert abs(np.mean(radii <= 0.5) - 0.25) < 0.03


def test_ascent_directions():
    g = np.array([[3.0, -4.0, 0.0]], "float32")
    np.testing.assert_array_equal(
        np.asarray(LinfBall().ascent_direction(g)), [[1.0, -1.0, 0.0]]
    )
    np.testing.assert_allclose(
        np.asarray(L2Ball().ascent_direction(g)), [[0.6, -0.8, 0.0]], 1e-6
    )
    zero = np.zeros((1, 3), "float32")
    assert np.all(np.isfinite(np.asarray(L2Ball().ascent_direction(zero))))


def test_distance():
    x = np.zeros((1, 2, 2), "float32")
    x_adv = np.array([[[0.3, 0.0], [0.0, -0.4]]], "float32")
    np.testing.assert_allclose(LinfBall().distance(x, x_adv), [0.4], 1e-6)
    np.testing.assert_allclose(L2Ball().distance(x, x_adv), [0.5], 1e-6)


def test_variable_eps_no_retrace():
    eps = tf.Variable(0.1)
    ball = LinfBall(eps=eps)
    x = _x((2, 3))

    @tf.function
    def proj(x):
        return ball.project(x + 1.0, x)

    first = np.asarray(proj(x))
    eps.assign(0.2)
    second = np.asarray(proj(x))
    np.testing.assert_allclose(first - x, 0.1, atol=1e-6)
    np.testing.assert_allclose(second, np.minimum(x + 0.2, 1.0), atol=1e-6)
    assert proj.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"eps": -0.1},
        {"eps": float("nan")},
        {"eps": np.array([0.1, -0.2])},
        {"value_range": (1.0, 0.0)},
        {"value_range": (0.0, 0.0)},
        {"value_range": (0.0,)},
        {"value_range": (0.0, float("inf"))},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="Invalid value received"):
        LinfBall(**kwargs)


@pytest.mark.parametrize("norm", ["inf", np.inf, 2, "l1", None])
def test_unknown_norm(norm):
    with pytest.raises(ValueError, match="norm"):
        threat_models.get(norm)


@pytest.mark.parametrize("cls", [LinfBall, L2Ball])
def test_config_round_trip(cls):
    ball = cls(eps=0.25, value_range=(-1.0, 1.0))
    clone = cls.from_config(ball.get_config())
    assert clone.get_config() == {"eps": 0.25, "value_range": [-1.0, 1.0]}
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(ball)
    )
    assert isinstance(restored, cls) and restored.eps == 0.25


@pytest.mark.parametrize("cls", [LinfBall, L2Ball])
def test_float64_inputs_keep_their_dtype(cls):
    x = np.zeros((2, 3), "float64")
    out = cls(eps=0.5, value_range=(-1.0, 1.0)).project(x + 2.0, x)
    assert out.dtype == "float64"
    assert np.asarray(cls(eps=0.5).distance(x, out)).max() <= 0.5 + 1e-9
