"""Keras layers for robust models, attack generators and perturbation sets.

`RandomLpNoise` adds random noise inside an Lp ball while training and
is the identity at inference (a cheap baseline, and the L-inf pairs of a
perturbation set). `PerturbationBound` (and `bound_perturbation`, its
function) maps a generator's output into the eps ball and the value
range, as AdvGAN's generator head; `GaussianSampling` is the
reparameterised sampling of a VAE; `CVAEAugmentation` replaces training
inputs by random members of a learned perturbation set.
"""

from keras_adv.layers._cvae_augment import CVAEAugmentation
from keras_adv.layers._noise import RandomLpNoise
from keras_adv.layers._perturbation import PerturbationBound
from keras_adv.layers._perturbation import bound_perturbation
from keras_adv.layers._sampling import GaussianSampling

__all__ = ["RandomLpNoise"]
__all__ += ["PerturbationBound", "bound_perturbation"]
__all__ += ["GaussianSampling"]
__all__ += ["CVAEAugmentation"]
