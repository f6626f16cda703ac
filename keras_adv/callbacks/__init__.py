"""keras_adv.callbacks."""

from keras_adv.callbacks.adversarial_training import AdversarialTraining
from keras_adv.callbacks.gan_monitor import GANMonitor
from keras_adv.callbacks.overfitting_guard import OverfittingGuard
from keras_adv.callbacks.robustness_monitor import RobustnessMonitor

__all__ = [
    "AdversarialTraining",
    "GANMonitor",
    "OverfittingGuard",
    "RobustnessMonitor",
]
