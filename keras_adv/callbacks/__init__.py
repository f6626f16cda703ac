"""keras_adv.callbacks."""

from keras_adv.callbacks._adversarial_training import AdversarialTraining
from keras_adv.callbacks._advgan_monitor import AdvGANMonitor
from keras_adv.callbacks._advgan_monitor import label_figures
from keras_adv.callbacks._advgan_update import AdvGANUpdate
from keras_adv.callbacks._gan_monitor import GANMonitor
from keras_adv.callbacks._overfitting_guard import OverfittingGuard
from keras_adv.callbacks._robustness_monitor import RobustnessMonitor

__all__ = [
    "AdversarialTraining",
    "GANMonitor",
    "OverfittingGuard",
    "RobustnessMonitor",
]
__all__ += ["AdvGANMonitor", "AdvGANUpdate", "label_figures"]
