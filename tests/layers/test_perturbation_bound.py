"""PerturbationBound: closed-form maps into the ball, the [x, raw] form."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv.layers import PerturbationBound
from keras_adv.layers._perturbation import bound_perturbation

RAW = np.array(
    [[3.0, -4.0, 0.0, 0.5], [0.1, 0.2, -0.2, 0.0], [50.0, 0.0, 0.0, 0.0]],
    "float32",
)


def _l2(a):
    return np.sqrt((np.asarray(a, "float64") ** 2).sum(axis=-1))


def test_linf_tanh_is_scaled_tanh():
    out = np.asarray(PerturbationBound(0.3)(RAW))
    np.testing.assert_allclose(out, 0.3 * np.tanh(RAW), rtol=1e-6)


def test_linf_clip_is_the_clip_trick():
    out = np.asarray(PerturbationBound(0.3, mode="clip")(RAW))
    np.testing.assert_array_equal(out, np.clip(RAW, -0.3, 0.3))


def test_l2_clip_is_the_projection():
    out = np.asarray(PerturbationBound(1.0, norm="l2", mode="clip")(RAW))
    norms = _l2(RAW)
    expected = RAW * np.minimum(1.0, 1.0 / norms)[:, None]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # Inside the ball: unchanged; outside: on the sphere.
    np.testing.assert_allclose(out[1], RAW[1], rtol=1e-6)
    np.testing.assert_allclose(_l2(out)[[0, 2]], [1.0, 1.0], rtol=1e-6)


def test_l2_tanh_squashes_the_length_and_keeps_the_direction():
    eps = 2.0
    out = np.asarray(PerturbationBound(eps, norm="l2")(RAW))
    norms = _l2(RAW)
    np.testing.assert_allclose(_l2(out), eps * np.tanh(norms), rtol=1e-5)
    unit = RAW / norms[:, None]
    np.testing.assert_allclose(
        out / _l2(out)[:, None], unit, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("mode", ["tanh", "clip"])
def test_always_inside_the_ball(norm, mode):
    raw = np.random.default_rng(0).normal(scale=100.0, size=(16, 5, 5, 1))
    out = np.asarray(bound_perturbation(raw, 0.5, norm, mode))
    flat = out.reshape(16, -1)
    size = np.abs(flat).max(-1) if norm == "linf" else _l2(flat)
    assert np.all(size <= 0.5 + 1e-5)


def test_pair_form_adds_and_clips_to_the_value_range():
    layer = PerturbationBound(0.3, mode="clip", value_range=(0.0, 1.0))
    x = np.array([[0.1, 0.5, 0.9, 0.95]], "float32")
    raw = np.array([[-1.0, 0.2, 1.0, -0.1]], "float32")
    out = np.asarray(layer([x, raw]))
    np.testing.assert_allclose(out, [[0.0, 0.7, 1.0, 0.85]], atol=1e-6)


def test_tanh_keeps_a_gradient_where_clip_has_none():
    import tensorflow as tf

    raw = tf.constant([[5.0]])
    for mode, nonzero in (("tanh", True), ("clip", False)):
        with tf.GradientTape() as tape:
            tape.watch(raw)
            out = PerturbationBound(0.3, mode=mode)(raw)
        grad = float(tape.gradient(out, raw)[0, 0])
        assert (grad != 0.0) is nonzero


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"eps": -0.1}, "eps"),
        ({"eps": 0.1, "norm": "l1"}, "norm"),
        ({"eps": 0.1, "mode": "sigmoid"}, "mode"),
        ({"eps": 0.1, "value_range": (1.0, 0.0)}, "value_range"),
    ],
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        PerturbationBound(**kwargs)


def test_generator_with_the_layer_saves_and_loads(tmp_path):
    x = keras.Input((4,))
    raw = keras.layers.Dense(4, kernel_initializer="ones")(x)
    out = PerturbationBound(0.2, norm="l2", mode="clip", name="b")([x, raw])
    model = keras.Model(x, out)
    path = str(tmp_path / "g.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.get_layer("b")
    assert isinstance(layer, keras_adv.layers.PerturbationBound)
    assert layer.get_config()["norm"] == "l2"
    data = np.random.default_rng(1).uniform(size=(3, 4)).astype("float32")
    np.testing.assert_allclose(loaded(data), model(data), atol=1e-7)


BIG = np.finfo("float32").max
NON_FINITE = np.array(
    [
        [np.inf, 1.0, -2.0, 0.0],
        [-np.inf, np.inf, 0.5, 0.0],
        [np.nan, 3.0, 4.0, 0.0],
        [BIG, BIG, 0.0, 0.0],
        [BIG, -BIG / 2, 1.0, 0.0],
        [np.nan] * 4,
    ],
    "float32",
)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("mode", ["tanh", "clip"])
def test_inside_the_ball_whatever_the_network_outputs(norm, mode):
    out = np.asarray(PerturbationBound(0.5, norm=norm, mode=mode)(NON_FINITE))
    assert np.all(np.isfinite(out))
    size = np.abs(out).max(-1) if norm == "linf" else _l2(out)
    assert np.all(size <= 0.5 + 1e-6)
    # NaN counts as 0: the all-NaN sample gets no perturbation.
    np.testing.assert_array_equal(out[5], 0.0)
    # The pair form stays in the ball and the value range too.
    x = np.full_like(NON_FINITE, 0.5)
    pair = np.asarray(
        PerturbationBound(0.5, norm=norm, mode=mode)([x, NON_FINITE])
    )
    assert np.all(np.isfinite(pair)) and pair.min() >= 0 and pair.max() <= 1


def test_non_finite_values_as_limits_of_growing_ones():
    eps = 0.5
    linf = np.asarray(bound_perturbation(NON_FINITE, eps, "linf", "tanh"))
    np.testing.assert_allclose(linf[0], eps * np.tanh([1e9, 1, -2, 0]))
    np.testing.assert_allclose(linf[2], eps * np.tanh([0, 3, 4, 0]))
    for mode in ("tanh", "clip"):
        l2 = np.asarray(bound_perturbation(NON_FINITE, eps, "l2", mode))
        # An infinite coordinate dominates: length eps along its sign.
        np.testing.assert_allclose(l2[0], [eps, 0, 0, 0], atol=1e-7)
        s = eps / np.sqrt(2.0)
        np.testing.assert_allclose(l2[1], [-s, s, 0, 0], atol=1e-7)
        # NaN is 0, the rest keeps its direction (3, 4) / 5.
        length = eps * np.tanh(5.0) if mode == "tanh" else eps
        np.testing.assert_allclose(
            l2[2], [0, 0.6 * length, 0.8 * length, 0], rtol=1e-6
        )
        # Values near the float32 limit keep their direction (their
        # squares overflow): (1, 1) / sqrt(2) and (2, -1) / sqrt(5).
        np.testing.assert_allclose(l2[3], [s, s, 0, 0], rtol=1e-6)
        np.testing.assert_allclose(
            l2[4], eps * np.array([2, -1, 0, 0]) / np.sqrt(5), atol=1e-6
        )


def test_gradients_stay_finite_for_non_finite_outputs():
    raw = tf.Variable(NON_FINITE)
    for norm in ("linf", "l2"):
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(bound_perturbation(raw, 0.5, norm, "tanh"))
        assert np.all(np.isfinite(tape.gradient(out, raw)))


def test_pair_form_refuses_x_outside_the_value_range():
    layer = PerturbationBound(0.3, value_range=(0.0, 1.0))
    x = np.array([[0.1, 0.5, 0.9, 0.95]], "float32")
    raw = np.zeros_like(x)
    with pytest.raises(tf.errors.InvalidArgumentError, match="value_range"):
        layer([x * 255, raw])
