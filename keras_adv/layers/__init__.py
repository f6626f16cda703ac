"""Keras layers for robust models, attack generators and perturbation sets.

`RandomLpNoise` adds random noise inside an Lp ball while training and
is the identity at inference (a cheap baseline, and the L-inf pairs of a
perturbation set). `PerturbationBound` maps a generator's output into
the eps ball and the value range, as AdvGAN's generator head;
`GaussianSampling` is the reparameterised sampling of a VAE;
`CVAEAugmentation` replaces training inputs by random members of a
learned perturbation set.
"""

from keras_adv import _api
from keras_adv.layers._cvae_augment import CVAEAugmentation
from keras_adv.layers._noise import RandomLpNoise
from keras_adv.layers._perturbation import PerturbationBound
from keras_adv.layers._sampling import GaussianSampling

__all__ = ["RandomLpNoise"]
__all__ += ["PerturbationBound"]
__all__ += ["GaussianSampling"]
__all__ += ["CVAEAugmentation"]

# Helpers that were public before 0.2 (see CHANGELOG.md): still importable
# from here, with a DeprecationWarning.
_DEPRECATED = {
    "bound_perturbation": (
        "keras_adv.layers._perturbation",
        "bound_perturbation",
    ),
}

__getattr__ = _api.deprecated_names(__name__, _DEPRECATED)
