"""keras_adv.callbacks."""

from keras_adv.callbacks.adversarial_training import AdversarialTraining

__all__ = []
__all__ += ["AdversarialTraining"]
