"""The AdvGAN paper's networks: structure, bounds, conditioning, saving."""

import keras
import numpy as np
import pytest

import keras_adv
from keras_adv.models import advgan_generator

EPS = 0.3


def _images(n=4, seed=0):
    return np.random.default_rng(seed).random((n, 28, 28, 1), "float32")


def _count(model, layer_type):
    return sum(type(layer) is layer_type for layer in model.layers)


@pytest.mark.parametrize("skips", [False, True])
@pytest.mark.parametrize("num_classes", [None, 10])
def test_generator_structure_and_bound(num_classes, skips):
    g = advgan_generator(
        eps=EPS, num_classes=num_classes, skip_connections=skips, seed=0
    )
    # c3s1-8, d16, d32, 4 x r32 (two convolutions), c3s1-1 (+2 mixers).
    assert _count(g, keras.layers.Conv2D) == 3 + 8 + 1 + 2 * skips
    assert _count(g, keras.layers.Conv2DTranspose) == 2
    x = _images()
    inputs = x if num_classes is None else [x, np.eye(10)[:4]]
    # Large weights drive the tanh head into saturation: still in the ball.
    for w in g.trainable_weights:
        w.assign(np.asarray(w) * 10.0 + 0.1)
    delta = np.asarray(g(inputs))
    assert delta.shape == x.shape
    assert np.abs(delta).max() <= EPS + 1e-6


@pytest.mark.parametrize("skips", [False, True])
def test_conditioned_generator_starts_as_the_plain_one(skips):
    # Conditional instance norm starts at scale 1 and shift 0: with the same
    # seeds, the conditioned generator equals the unconditioned one.
    plain = advgan_generator(eps=EPS, skip_connections=skips, seed=3)
    conditioned = advgan_generator(
        eps=EPS, num_classes=10, skip_connections=skips, seed=3
    )
    x = _images()
    for t in (0, 7):
        targets = np.eye(10, dtype="float32")[[t] * 4]
        np.testing.assert_allclose(
            conditioned([x, targets]), plain(x), atol=1e-6
        )


def test_conditioning_survives_instance_norm():
    # Per-target scales and shifts change the output with the target; a
    # target joined as constant channels would be removed by the next
    # instance norm (the reason for conditional instance norm).
    g = advgan_generator(eps=EPS, num_classes=10, seed=0)
    rng = np.random.default_rng(1)
    for layer in g.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([rng.normal(0, 0.5, kernel.shape), bias])
    x = _images()
    a = np.asarray(g([x, np.eye(10, dtype="float32")[[1] * 4]]))
    b = np.asarray(g([x, np.eye(10, dtype="float32")[[2] * 4]]))
    assert np.abs(a - b).mean() > 1e-3


def _map_layers(g, k):
    # The Reshape layers that turn the one-hot target into (28, 28, k) maps.
    return [
        layer
        for layer in g.layers
        if isinstance(layer, keras.layers.Reshape)
        and tuple(layer.output.shape) == (None, 28, 28, k)
    ]


def _map_tables(g, k):
    # The Dense layers holding the per-target maps (one row per class).
    return [
        layer
        for layer in g.layers
        if isinstance(layer, keras.layers.Dense) and layer.units == 28 * 28 * k
    ]


@pytest.mark.parametrize("skips", [False, True])
def test_target_maps_start_at_zero(skips):
    # Zero-initialised maps and conditional norms at scale 1, shift 0: at
    # initialisation the output does not depend on the target.
    g = advgan_generator(
        eps=EPS, num_classes=10, skip_connections=skips, target_maps=3, seed=0
    )
    (maps,) = _map_layers(g, 3)
    x = _images()
    out = [
        np.asarray(g([x, np.eye(10, dtype="float32")[[t] * 4]]))
        for t in (0, 5, 9)
    ]
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])
    probe = keras.Model(g.inputs, maps.output)
    np.testing.assert_array_equal(
        probe([x, np.eye(10, dtype="float32")[:4]]), np.zeros((4, 28, 28, 3))
    )


@pytest.mark.parametrize("skips", [False, True])
def test_target_maps_are_rows_of_a_per_target_table(skips):
    g = advgan_generator(
        eps=EPS, num_classes=10, skip_connections=skips, target_maps=2, seed=0
    )
    (maps,) = _map_layers(g, 2)
    (dense,) = _map_tables(g, 2)
    table = np.random.default_rng(0).normal(size=(10, 28 * 28 * 2))
    dense.set_weights([table, np.zeros(28 * 28 * 2)])
    x = _images()
    targets = np.eye(10, dtype="float32")[[3, 3, 8, 8]]
    got = np.asarray(keras.Model(g.inputs, maps.output)([x, targets]))
    np.testing.assert_allclose(
        got, table[[3, 3, 8, 8]].reshape(4, 28, 28, 2), rtol=1e-6
    )
    # The maps reach the perturbation: targets now give different outputs.
    a = np.asarray(g([x, np.eye(10, dtype="float32")[[3] * 4]]))
    b = np.asarray(g([x, np.eye(10, dtype="float32")[[8] * 4]]))
    assert np.abs(a - b).mean() > 1e-3


@pytest.mark.parametrize("target_maps", [0, 2])
def test_generator_with_skips_round_trips(tmp_path, target_maps):
    g = advgan_generator(
        eps=EPS,
        num_classes=10,
        skip_connections=True,
        target_maps=target_maps,
        seed=0,
    )
    if target_maps:  # non-zero maps, so the round trip carries them
        (dense,) = _map_tables(g, target_maps)
        kernel, bias = dense.get_weights()
        dense.set_weights([np.full_like(kernel, 0.5), bias])
    path = str(tmp_path / "g.keras")
    g.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    inputs = [_images(), np.eye(10, dtype="float32")[:4]]
    np.testing.assert_allclose(loaded(inputs), g(inputs), atol=1e-7)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"skip_connections": "yes"}, "skip_connections"),
        ({"filters": 0}, "filters"),
        ({"num_classes": 1}, "num_classes"),
        ({"input_shape": (30, 28, 1)}, "input_shape"),
        ({"num_classes": 10, "target_maps": -1}, "target_maps"),
        ({"target_maps": 2}, "target_maps"),  # maps need num_classes
    ],
)
def test_generator_invalid_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        keras_adv.models.advgan_generator(**kwargs)
