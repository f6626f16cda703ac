"""Attacks: `x_adv = attack(model, x, y=None)` inside one compiled graph.

Start with `PGD(eps=0.3, steps=10)` for training and monitoring, and
`AutoAttack(eps=0.3)` for the figure to report (APGD-CE, APGD-T, FAB-T
and Square, each on the samples still robust). `FGSM`, `BIM`, `MIM`,
`APGD`, `APGDT`, `FAB`, `Square` and `CarliniWagnerL2` are the single
attacks; `GeneratorAttack` (a trained AdvGAN generator) and `LatentPGD`
(a learned perturbation set) follow the same contract, and `BlackBox`
wraps a classifier seen only through its answers (counted queries). `get`
builds an attack from its registered name. `Attack` is the contract
every attack follows (subclasses write `generate`); `IterativeAttack`
adds the Lp-ball search; `ModelLogits` is the model-to-logits adapter
shared with training and evaluation.
"""

from keras_adv import _api
from keras_adv.attacks._apgd import APGD
from keras_adv.attacks._apgd_targeted import APGDT
from keras_adv.attacks._autoattack import AutoAttack
from keras_adv.attacks._autoattack import EOTModelLogits
from keras_adv.attacks._autoattack_report import AutoAttackReport
from keras_adv.attacks._base import Attack
from keras_adv.attacks._blackbox import BlackBox
from keras_adv.attacks._cw import CarliniWagnerL2
from keras_adv.attacks._fab import FAB
from keras_adv.attacks._fgsm import FGSM
from keras_adv.attacks._generator import GeneratorAttack
from keras_adv.attacks._iterative import IterativeAttack
from keras_adv.attacks._latent_pgd import LatentPGD
from keras_adv.attacks._logits import ModelLogits
from keras_adv.attacks._pgd import BIM
from keras_adv.attacks._pgd import MIM
from keras_adv.attacks._pgd import PGD
from keras_adv.attacks._registry import get
from keras_adv.attacks._square import Square

__all__ = [
    "APGD",
    "APGDT",
    "BIM",
    "FAB",
    "FGSM",
    "MIM",
    "PGD",
    "Square",
    "Attack",
    "AutoAttack",
    "AutoAttackReport",
    "CarliniWagnerL2",
    "EOTModelLogits",
    "IterativeAttack",
    "ModelLogits",
]
__all__ += ["BlackBox", "GeneratorAttack"]
__all__ += ["LatentPGD"]
__all__ += ["get"]

# Helpers that were public before 0.2 (see CHANGELOG.md): still importable
# from here, with a DeprecationWarning naming their home.
_DEPRECATED = {
    "as_stateless_seed": ("keras_adv._random", "as_stateless_seed"),
    "fold_seed": ("keras_adv._random", "fold_seed"),
    "input_assertions": ("keras_adv._validation", "input_assertions"),
    "check_classifier_outputs": (
        "keras_adv._outputs",
        "check_classifier_outputs",
    ),
    "looks_like_probabilities": (
        "keras_adv._outputs",
        "looks_like_probabilities",
    ),
    "output_kind": ("keras_adv._outputs", "output_kind"),
    "sparse_labels": ("keras_adv._outputs", "sparse_labels"),
    "p_selection": ("keras_adv.attacks._square_schedule", "p_selection"),
    "projection_l2": ("keras_adv.attacks._fab", "projection_l2"),
    "projection_linf": ("keras_adv.attacks._fab", "projection_linf"),
}

__getattr__ = _api.deprecated_names(__name__, _DEPRECATED)
