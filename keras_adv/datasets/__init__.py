"""Datasets: the embedded MNIST subset, loaders and perturbation pairs.

Start with `load_mnist_subset()`: 4,000 training and 1,000 test MNIST
images shipped with the package (offline, float32 in `[0, 1]`);
`mnist_subset_dataset` is the same data as a `tf.data.Dataset`.
`load_tfds` and `load_npz` read other image classification data, and
`from_spec` resolves the data specs of the `keras-adv` command
(`mnist-subset`, `tfds:NAME`, `npz:PATH`). `make_pairs`, `pair_dataset` and
`mnist_subset_pairs` build the `(x, x~)` pairs (L-inf noise, or rotation,
scaling and translation) that a learned perturbation set trains on.
`pseudo_labelled_dataset` and `make_pseudo_labelled` label a GAN's samples
with a classifier, and `mix_datasets` mixes them with the real data at an
exact share per batch (training on generated data, Gowal et al. 2021).
"""

from keras_adv import _api
from keras_adv.datasets._generated import make_pseudo_labelled
from keras_adv.datasets._generated import mix_datasets
from keras_adv.datasets._generated import pseudo_labelled_dataset
from keras_adv.datasets._loaders import from_spec
from keras_adv.datasets._loaders import load_npz
from keras_adv.datasets._loaders import load_tfds
from keras_adv.datasets._mnist_subset import load_mnist_subset
from keras_adv.datasets._mnist_subset import mnist_subset_dataset
from keras_adv.datasets._pairs import make_pairs
from keras_adv.datasets._pairs import mnist_subset_pairs
from keras_adv.datasets._pairs import pair_dataset

__all__ = [
    "from_spec",
    "load_mnist_subset",
    "load_npz",
    "load_tfds",
    "mnist_subset_dataset",
]
__all__ += [
    "make_pairs",
    "mnist_subset_pairs",
    "pair_dataset",
]
__all__ += [
    "make_pseudo_labelled",
    "mix_datasets",
    "pseudo_labelled_dataset",
]

# Helpers that were public before 0.2 (see CHANGELOG.md): still importable
# from here, with a DeprecationWarning.
_DEPRECATED = {
    "linf_noise_transform": (
        "keras_adv.datasets._pairs",
        "linf_noise_transform",
    ),
    "rts_transform": ("keras_adv.datasets._pairs", "rts_transform"),
}

__getattr__ = _api.deprecated_names(__name__, _DEPRECATED)
