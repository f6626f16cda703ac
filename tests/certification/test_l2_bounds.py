"""L2 bounds through the layers that come before the first affine one.

`Flatten`, `Reshape` and the elementwise affine layers (`Rescaling`,
`Normalization`, `BatchNormalization` in inference mode) keep an L2 ball a
(scaled) ball: the first `Dense` or convolution after them must be bounded
over it, as if the model read flat, unscaled inputs, not over the L-inf
box around it (which made L2 bounds of an `Input -> Flatten -> Dense`
model almost vacuous).
"""

import keras
import numpy as np
import pytest

from keras_adv.certification import interval_bounds
from keras_adv.certification import margin_bounds

SHAPE = (4, 4, 1)
SIZE = 16


def _dense_stack(seed):
    init = keras.initializers.GlorotUniform
    return [
        keras.layers.Dense(
            12, activation="relu", kernel_initializer=init(seed)
        ),
        keras.layers.Dense(3, kernel_initializer=init(seed + 1)),
    ]


def _flat_and_image(front):
    """The same dense weights behind a flat input and behind `front`."""
    flat = keras.Sequential([keras.Input((SIZE,)), *_dense_stack(0)])
    image = keras.Sequential([keras.Input(SHAPE), *front, *_dense_stack(0)])
    image.layers[-2].set_weights(flat.layers[0].get_weights())
    image.layers[-1].set_weights(flat.layers[1].get_weights())
    return flat, image


def _inputs(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.8, size=(n,) + SHAPE).astype("float32")


@pytest.mark.parametrize("eps", [0.05, 0.5])
def test_flatten_first_gives_the_bounds_of_the_flat_model(eps):
    flat, image = _flat_and_image([keras.layers.Flatten()])
    x = _inputs()
    a = interval_bounds(flat, x.reshape(-1, SIZE), eps, norm="l2")
    b = interval_bounds(image, x, eps, norm="l2")
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)
    y = np.zeros(len(x), "int64")
    for method in ("ibp", "crown_ibp"):
        np.testing.assert_allclose(
            margin_bounds(flat, x.reshape(-1, SIZE), y, eps, method, "l2"),
            margin_bounds(image, x, y, eps, method, "l2"),
            rtol=1e-4,
            atol=1e-4,
        )


def test_a_scalar_rescaling_scales_the_ball():
    # Rescaling(0.5) then Dense(W) is Dense(0.5 W) on the raw input.
    flat, image = _flat_and_image(
        [keras.layers.Rescaling(0.5, offset=0.1), keras.layers.Flatten()]
    )
    kernel, bias = flat.layers[0].get_weights()
    flat.layers[0].set_weights([0.5 * kernel, bias + 0.1 * kernel.sum(0)])
    x = _inputs()
    eps = 0.3
    a = interval_bounds(flat, x.reshape(-1, SIZE), eps, norm="l2")
    b = interval_bounds(image, x, eps, norm="l2")
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)


def test_per_channel_scaling_is_sound_and_tighter_than_the_box():
    # Normalization with per-feature variance after a Reshape: points on
    # the L2 sphere stay inside the bounds, which are tighter than the
    # L-inf box's (the L-inf bounds at the same eps contain the L2 ball).
    norm_layer = keras.layers.Normalization(
        axis=-1,
        mean=np.linspace(0.0, 1.0, SIZE),
        variance=np.linspace(0.2, 4.0, SIZE),
    )
    model = keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Reshape((SIZE,)),
            norm_layer,
            *_dense_stack(3),
        ]
    )
    x = _inputs(n=4, seed=1)
    eps = 0.4
    lower, upper = interval_bounds(model, x, eps, norm="l2")
    box_lower, box_upper = interval_bounds(
        model, x, eps, norm="linf", value_range=None
    )
    assert np.all(upper - lower <= box_upper - box_lower + 1e-5)
    assert np.mean(upper - lower) < 0.9 * np.mean(box_upper - box_lower)
    rng = np.random.default_rng(2)
    for _ in range(20):
        direction = rng.normal(size=x.shape).astype("float32")
        direction /= np.linalg.norm(
            direction.reshape(len(x), -1), axis=1
        ).reshape(-1, 1, 1, 1)
        z = np.asarray(model(x + eps * direction))
        assert np.all(z >= lower - 1e-4) and np.all(z <= upper + 1e-4)


def test_batch_normalization_first_matches_the_folded_dense():
    bn = keras.layers.BatchNormalization(epsilon=0.0)
    flat, image = _flat_and_image([keras.layers.Flatten(), bn])
    rng = np.random.default_rng(4)
    gamma = rng.uniform(0.5, 2.0, SIZE).astype("float32")
    beta = rng.normal(size=SIZE).astype("float32")
    mean = rng.normal(size=SIZE).astype("float32")
    var = rng.uniform(0.5, 2.0, SIZE).astype("float32")
    bn.set_weights([gamma, beta, mean, var])
    scale = gamma / np.sqrt(var)
    shift = beta - mean * scale
    kernel, bias = flat.layers[0].get_weights()
    flat.layers[0].set_weights([scale[:, None] * kernel, bias + shift @ kernel])
    x = _inputs(seed=5)
    a = interval_bounds(flat, x.reshape(-1, SIZE), 0.2, norm="l2")
    b = interval_bounds(image, x, 0.2, norm="l2")
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-4)
