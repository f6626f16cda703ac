"""keras_adv.layers: Keras layers for robust models and generators."""

from keras_adv.layers._cvae_augment import CVAEAugmentation
from keras_adv.layers._noise import RandomLpNoise
from keras_adv.layers._perturbation import PerturbationBound
from keras_adv.layers._perturbation import bound_perturbation
from keras_adv.layers._sampling import GaussianSampling

__all__ = ["RandomLpNoise"]
__all__ += ["PerturbationBound", "bound_perturbation"]
__all__ += ["GaussianSampling"]
__all__ += ["CVAEAugmentation"]
