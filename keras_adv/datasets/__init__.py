"""Datasets: the embedded MNIST subset and tensorflow-datasets loaders."""

from keras_adv.datasets._loaders import from_spec
from keras_adv.datasets._loaders import load_npz
from keras_adv.datasets._loaders import load_tfds
from keras_adv.datasets._mnist_subset import load_mnist_subset
from keras_adv.datasets._mnist_subset import mnist_subset_dataset
from keras_adv.datasets._pairs import linf_noise_transform
from keras_adv.datasets._pairs import make_pairs
from keras_adv.datasets._pairs import mnist_subset_pairs
from keras_adv.datasets._pairs import pair_dataset
from keras_adv.datasets._pairs import rts_transform

__all__ = [
    "from_spec",
    "load_mnist_subset",
    "load_npz",
    "load_tfds",
    "mnist_subset_dataset",
]
__all__ += [
    "linf_noise_transform",
    "make_pairs",
    "mnist_subset_pairs",
    "pair_dataset",
    "rts_transform",
]
