"""keras_adv.callbacks."""

from keras_adv.callbacks.adversarial_training import AdversarialTraining
from keras_adv.callbacks.gan_monitor import GANMonitor
from keras_adv.callbacks.robustness_monitor import RobustnessMonitor

__all__ = []
__all__ += ["GANMonitor"]
__all__ += ["AdversarialTraining"]
__all__ += ["RobustnessMonitor"]
