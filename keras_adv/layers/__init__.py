"""keras_adv.layers: Keras layers for robust models and generators."""

from keras_adv.layers._noise import RandomLpNoise

__all__ = ["RandomLpNoise"]
