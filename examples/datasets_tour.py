"""A tour of keras_adv.datasets: the embedded subset, tf.data, npz files.

python examples/datasets_tour.py
"""

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

import keras_adv  # noqa: E402


def main():
    (x, y), (x_test, y_test) = keras_adv.datasets.load_mnist_subset()
    print(f"train {x.shape} {x.dtype} in [{x.min()}, {x.max()}]")
    print(f"test  {x_test.shape}, per class: {np.bincount(y_test).tolist()}")

    # An ASCII rendering of the first test digit.
    for row in x_test[0, ::2, ::1, 0]:
        print("".join("#" if v > 0.5 else "." for v in row))
    print(f"label: {y_test[0]}")

    ds = keras_adv.datasets.mnist_subset_dataset("train", batch_size=256)
    xb, yb = next(iter(ds))
    print(f"tf.data batch: {tuple(xb.shape)} {xb.dtype.name}, {yb.dtype.name}")

    path = os.path.join(tempfile.mkdtemp(), "digits.npz")
    raw, _ = keras_adv.datasets.load_mnist_subset(normalize=False)
    np.savez(path, x=raw[0][:100], y=raw[1][:100])
    xs, ys = keras_adv.datasets.from_spec(f"npz:{path}")
    print(f"npz spec: {xs.shape} {xs.dtype} (uint8 converted / 255)")


if __name__ == "__main__":
    main()
