"""Datasets: the embedded MNIST subset, loaders and perturbation pairs.

Start with `load_mnist_subset()`: 4,000 training and 1,000 test MNIST
images shipped with the package (offline, float32 in `[0, 1]`);
`mnist_subset_dataset` is the same data as a `tf.data.Dataset`.
`load_tfds` and `load_npz` read other image classification data, and
`from_spec` resolves the data specs of the `keras-adv` command
(`mnist-subset`, `tfds:NAME`, `npz:PATH`). `make_pairs`, `pair_dataset`,
`mnist_subset_pairs`, `linf_noise_transform` and `rts_transform` build the
`(x, x~)` pairs that a learned perturbation set trains on.
"""

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
