"""Pair pipelines: noise bounds, exact RTS special cases, fixed splits."""

import numpy as np
import pytest

from keras_adv.datasets import make_pairs
from keras_adv.datasets import mnist_subset_pairs
from keras_adv.datasets import pair_dataset
from keras_adv.datasets._pairs import linf_noise_transform
from keras_adv.datasets._pairs import rts_transform


def blob():
    x = np.zeros((2, 28, 28, 1), "float32")
    x[:, 10:18, 12:16] = 1.0
    return x


def test_linf_pairs_stay_in_the_ball_and_the_range():
    x = np.random.default_rng(0).uniform(size=(64, 28, 28, 1))
    x = x.astype("float32")
    x_tilde = make_pairs(x, "linf", seed=0)
    assert np.abs(x_tilde - x).max() <= 0.3 + 1e-6
    assert x_tilde.min() >= 0.0 and x_tilde.max() <= 1.0
    inner = (x > 0.3) & (x < 0.7)  # unclipped: uniform on [-0.3, 0.3]
    assert abs(np.abs(x_tilde - x)[inner].mean() - 0.15) < 0.005
    layer = linf_noise_transform(0.1, seed=0)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)  # inference


def test_rts_identity_settings_and_pure_translation():
    x = blob()
    same = rts_transform(rotation=0.0, scale=(1.0, 1.0), translation=0)
    np.testing.assert_array_equal(np.asarray(same(x, training=True)), x)
    shift = rts_transform(rotation=0.0, scale=(1.0, 1.0), translation=3, seed=0)
    x = np.repeat(blob()[:1], 64, axis=0)
    out = np.asarray(shift(x, training=True))
    # Mass is kept (the blob stays inside), the centre of mass moves by at
    # most 3 pixels per axis, and each image gets its own shift.
    np.testing.assert_allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)), 1e-4)
    rows = np.arange(28)[None, :, None, None]
    centre = (out * rows).sum((1, 2, 3)) / out.sum((1, 2, 3))
    assert np.all(np.abs(centre - 13.5) <= 3.0 + 1e-4)
    assert centre.std() > 1.0


def test_rts_rotates_and_scales_reproducibly():
    x = blob()
    a = make_pairs(x, "rts", seed=3)
    b = make_pairs(x, "rts", seed=3)
    c = make_pairs(x, "rts", seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, x)
    assert a.min() >= 0.0 and a.max() <= 1.0 + 1e-6
    # The mass changes with the scale (0.7-1.3 in side: 0.49-1.69 area).
    ratio = a.reshape(2, -1).sum(1) / x.reshape(2, -1).sum(1)
    assert np.all((ratio > 0.4) & (ratio < 1.8))
    with pytest.raises(ValueError, match="scale"):
        rts_transform(scale=(1.3, 0.7))
    with pytest.raises(ValueError, match="kind"):
        make_pairs(x, "blur")


def test_mnist_subset_pairs_fixed_split():
    data = mnist_subset_pairs("linf", calibration=400)
    x_train, y_train = data["train"]
    x_cal, x_cal_tilde, y_cal = data["calibration"]
    x_test, x_test_tilde, y_test = data["test"]
    assert len(x_train) == 3600 and len(x_cal) == 400 and len(x_test) == 1000
    assert x_cal_tilde.shape == x_cal.shape and y_test.shape == (1000,)
    again = mnist_subset_pairs("linf", calibration=400)
    np.testing.assert_array_equal(again["calibration"][1], x_cal_tilde)
    np.testing.assert_array_equal(again["test"][1], x_test_tilde)
    # Calibration images are held out from the CVAE's training images.
    train_keys = {im.tobytes() for im in x_train}
    assert not any(im.tobytes() in train_keys for im in x_cal)


def test_pair_dataset_draws_fresh_perturbations_each_epoch():
    x = np.full((8, 28, 28, 1), 0.5, "float32")
    ds = pair_dataset(x, "linf", batch_size=8, shuffle=False)
    (a, a_tilde), (b, b_tilde) = list(ds) + list(ds)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a_tilde, b_tilde)
    import tensorflow as tf

    from_ds = pair_dataset(
        tf.data.Dataset.from_tensor_slices((x, np.zeros(8))),
        "rts",
        batch_size=4,
    )
    assert [tuple(p.shape) for p in next(iter(from_ds))] == [
        (4, 28, 28, 1),
        (4, 28, 28, 1),
    ]


def test_inputs_outside_the_transforms_value_range_are_refused():
    # Clipped into [0, 1], every copy of a 0..255 image would be another
    # image, not a perturbed copy.
    x = np.random.default_rng(0).uniform(size=(4, 28, 28, 1))
    x = x.astype("float32") * 255
    with pytest.raises(ValueError, match=r"`x`.*Received: x=.values in \["):
        make_pairs(x, "linf")
    with pytest.raises(ValueError, match="value_range"):
        make_pairs(x, linf_noise_transform(0.3, seed=0))
    with pytest.raises(ValueError, match="`x`"):
        pair_dataset(x, "linf")
    # In the data's own units the pairs are a perturbation of eps.
    x_tilde = make_pairs(x, "linf", eps=76.5, value_range=(0, 255))
    assert 0 < np.abs(x_tilde - x).max() <= 76.5 + 1e-3
    # A dataset reaches the layer's in-graph check.
    import tensorflow as tf

    ds = pair_dataset(tf.data.Dataset.from_tensor_slices(x), "linf")
    with pytest.raises(tf.errors.InvalidArgumentError, match="value_range"):
        next(iter(ds))
    # Transforms without a value range (rotations) take any units.
    assert make_pairs(x[:1], "rts", seed=0).max() > 1.0
