"""Datasets: the embedded MNIST subset and tensorflow-datasets loaders."""

from keras_adv.datasets._loaders import from_spec
from keras_adv.datasets._loaders import load_npz
from keras_adv.datasets._loaders import load_tfds
from keras_adv.datasets._mnist_subset import load_mnist_subset
from keras_adv.datasets._mnist_subset import mnist_subset_dataset

__all__ = [
    "from_spec",
    "load_mnist_subset",
    "load_npz",
    "load_tfds",
    "mnist_subset_dataset",
]
