import hashlib
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_adv import datasets
from keras_adv.datasets import _mnist_subset as mnist_subset

DIGESTS = {
    "images": (
        "2913c6b6527114b7307e1086335a7665e3f94c74aba3d67525e6f116bf5ae20f"
    ),
    "labels": (
        "41b7b0a9d94690a3a2f54a1d01a9f1cc1b9512e3954fb737ad5ed9f66972403d"
    ),
    "train_index": (
        "339cafd61f8f80880a8122e03b4e1a9e93ce503ce7c7a694a544ea6504b5e366"
    ),
    "test_index": (
        "27e437b84ef8a62ad8f68c3e2be1aa98af026e305959e7b545c81633f5846351"
    ),
}


def test_embedded_file_matches_recorded_digests():
    arrays = mnist_subset._load_arrays()
    for name, digest in DIGESTS.items():
        data = np.ascontiguousarray(arrays[name]).tobytes()
        assert hashlib.sha256(data).hexdigest() == digest, name


def test_shapes_dtypes_ranges():
    (x, y), (x_test, y_test) = datasets.load_mnist_subset()
    assert x.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    (xr, _), _ = datasets.load_mnist_subset(normalize=False)
    assert xr.dtype == np.uint8 and xr.max() == 255
    np.testing.assert_array_equal(xr.astype("float32") / 255.0, x)


def test_split_is_stratified_disjoint_and_fixed():
    (x, y), (x_test, y_test) = datasets.load_mnist_subset()
    assert np.all(np.bincount(y, minlength=10) == 400)
    assert np.all(np.bincount(y_test, minlength=10) == 100)
    train_rows = {row.tobytes() for row in x.reshape(len(x), -1)}
    assert not any(r.tobytes() in train_rows for r in x_test.reshape(1000, -1))
    (x2, y2), _ = datasets.load_mnist_subset()
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    # Classes are mixed, not sorted.
    assert len(np.unique(y[:50])) == 10


def test_returned_arrays_are_independent_copies():
    (x, _), _ = datasets.load_mnist_subset()
    x[:] = 0.0
    (x2, _), _ = datasets.load_mnist_subset()
    assert x2.max() == 1.0


def test_looks_like_digits():
    # A real-data sanity check: the mean image of each digit is centred
    # ink on a black background, and classes differ from each other.
    (x, y), _ = datasets.load_mnist_subset()
    means = np.stack([x[y == c].mean(axis=0)[..., 0] for c in range(10)])
    border = np.concatenate([means[:, :3, :], means[:, -3:, :]], axis=1)
    assert np.all(border.mean(axis=(1, 2)) < 0.05)  # nearly empty border
    assert np.all(means[:, 10:18, 10:18].max(axis=(1, 2)) > 0.3)
    distances = np.abs(means[:, None] - means[None]).sum(axis=(2, 3))
    assert np.all(distances[~np.eye(10, dtype=bool)] > 20.0)


def test_mnist_subset_dataset():
    ds = datasets.mnist_subset_dataset("test", batch_size=300, shuffle=False)
    batches = list(ds)
    assert [len(b[0]) for b in batches] == [300, 300, 300, 100]
    x = np.concatenate([b[0].numpy() for b in batches])
    _, (x_test, _) = datasets.load_mnist_subset()
    np.testing.assert_array_equal(x, x_test)
    dropped = datasets.mnist_subset_dataset(
        "train", batch_size=300, drop_remainder=True
    )
    assert dropped.element_spec[0].shape.as_list() == [300, 28, 28, 1]
    with pytest.raises(ValueError, match="split"):
        datasets.mnist_subset_dataset("validation")
    with pytest.raises(ValueError, match="batch_size"):
        datasets.mnist_subset_dataset(batch_size=0)


@pytest.mark.parametrize(
    "name,shape",
    [
        ("mnist", (28, 28, 1)),
        ("fashion_mnist", (28, 28, 1)),
        ("cifar10", (32, 32, 3)),
    ],
)
def test_load_tfds_with_mock_data(name, shape):
    with tfds.testing.mock_data(num_examples=10):
        ds = datasets.load_tfds(name, "train", batch_size=4, seed=1)
        batches = list(ds)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    x, y = batches[0]
    assert tuple(x.shape[1:]) == shape and x.dtype.name == "float32"
    assert float(np.min(x)) >= 0.0 and float(np.max(x)) <= 1.0
    assert float(np.max(x)) > 0.0  # scaled, not zeroed
    assert y.dtype.is_integer


def test_load_tfds_unknown_name():
    with pytest.raises(ValueError, match="`name`"):
        datasets.load_tfds("imagenet")


def test_load_npz(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_test=np.full((3, 2, 2, 1), 51, "uint8"), y_test=[1, 2, 3])
    x, y = datasets.load_npz(path)
    assert x.dtype == np.float32 and np.allclose(x, 0.2)
    assert y.tolist() == [1, 2, 3] and y.dtype == np.int64
    one_hot = tmp_path / "o.npz"
    np.savez(one_hot, x=np.zeros((2, 3), "float64"), y=np.eye(2))
    assert datasets.load_npz(one_hot)[1].tolist() == [0, 1]
    with pytest.raises(FileNotFoundError, match="No such npz"):
        datasets.load_npz(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros(2))
    with pytest.raises(ValueError, match="'x' and 'y'"):
        datasets.load_npz(bad)
    short = tmp_path / "short.npz"
    np.savez(short, x=np.zeros((3, 2)), y=[0])
    with pytest.raises(ValueError, match="different lengths"):
        datasets.load_npz(short)


def test_from_spec(tmp_path):
    x, y = datasets.from_spec("mnist-subset", split="train", max_samples=7)
    assert x.shape == (7, 28, 28, 1) and y.shape == (7,)
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((4, 3), "float32"), y=[0, 1, 0, 1])
    assert datasets.from_spec(f"npz:{path}")[0].shape == (4, 3)
    with tfds.testing.mock_data(num_examples=6):
        x, y = datasets.from_spec("tfds:mnist", split="test", max_samples=5)
    assert x.shape == (5, 28, 28, 1)
    for spec in ["", "mnist", "tfds:", "tfds:imagenet", "npz:", "csv:x"]:
        with pytest.raises(ValueError):
            datasets.from_spec(spec)


def test_npz_float_images_outside_unit_range_are_refused(tmp_path):
    path = os.path.join(tmp_path, "d.npz")
    np.savez(path, x=np.full((2, 4, 4, 1), 200.0, "float32"), y=[0, 1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        datasets.load_npz(path)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        datasets.from_spec("npz:" + path)
