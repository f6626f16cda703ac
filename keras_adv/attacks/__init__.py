"""Attacks: `x_adv = attack(model, x, y=None)` inside one compiled graph.

`Attack` is the contract every attack follows (subclasses write
`generate`); `IterativeAttack` adds the Lp-ball search; `ModelLogits` is
the model-to-logits adapter shared with training and evaluation.
"""

from keras_adv.attacks._apgd import APGD
from keras_adv.attacks._apgd import APGDT
from keras_adv.attacks._autoattack import AutoAttack
from keras_adv.attacks._autoattack import AutoAttackReport
from keras_adv.attacks._autoattack import EOTModelLogits
from keras_adv.attacks._base import Attack
from keras_adv.attacks._base import as_stateless_seed
from keras_adv.attacks._base import fold_seed
from keras_adv.attacks._base import input_assertions
from keras_adv.attacks._blackbox import BlackBox
from keras_adv.attacks._cw import CarliniWagnerL2
from keras_adv.attacks._fab import FAB
from keras_adv.attacks._fab import projection_l2
from keras_adv.attacks._fab import projection_linf
from keras_adv.attacks._fgsm import FGSM
from keras_adv.attacks._generator import GeneratorAttack
from keras_adv.attacks._iterative import IterativeAttack
from keras_adv.attacks._latent_pgd import LatentPGD
from keras_adv.attacks._logits import ModelLogits
from keras_adv.attacks._logits import check_classifier_outputs
from keras_adv.attacks._logits import looks_like_probabilities
from keras_adv.attacks._logits import output_kind
from keras_adv.attacks._logits import sparse_labels
from keras_adv.attacks._pgd import BIM
from keras_adv.attacks._pgd import MIM
from keras_adv.attacks._pgd import PGD
from keras_adv.attacks._square import Square
from keras_adv.attacks._square import p_selection

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
    "as_stateless_seed",
    "check_classifier_outputs",
    "fold_seed",
    "input_assertions",
    "looks_like_probabilities",
    "output_kind",
    "p_selection",
    "projection_l2",
    "projection_linf",
    "sparse_labels",
]
__all__ += ["BlackBox", "GeneratorAttack"]
__all__ += ["LatentPGD"]
