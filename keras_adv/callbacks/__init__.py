"""Callbacks that add adversarial robustness to `model.fit`.

Start with `AdversarialTraining`, which trains any compiled classifier on
adversarial examples for the duration of `fit`
(`AdversarialTraining(keras_adv.attacks.PGD(eps=0.3, steps=7))`), and
`RobustnessMonitor`, which measures robust accuracy every few epochs into
the epoch logs (for `EarlyStopping` and `ModelCheckpoint`) and into
TensorBoard. `OverfittingGuard` stops single-step (FGSM-RS) training when
its PGD accuracy collapses. `GANMonitor`, `AdvGANMonitor` and
`AdvGANUpdate` serve the generative models of `keras_adv.models`.
"""

from keras_adv import _api
from keras_adv.callbacks._adversarial_training import AdversarialTraining
from keras_adv.callbacks._advgan_monitor import AdvGANMonitor
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
__all__ += ["AdvGANMonitor", "AdvGANUpdate"]

# Helpers that were public before 0.2 (see CHANGELOG.md): still importable
# from here, with a DeprecationWarning.
_DEPRECATED = {
    "label_figures": ("keras_adv.callbacks._advgan_monitor", "label_figures"),
}

__getattr__ = _api.deprecated_names(__name__, _DEPRECATED)
