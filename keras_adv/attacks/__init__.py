"""Attacks: `x_adv = attack(model, x, y=None)` inside one compiled graph."""

from keras_adv.attacks.base import Attack
from keras_adv.attacks.fgsm import FGSM
from keras_adv.attacks.pgd import BIM
from keras_adv.attacks.pgd import MIM
from keras_adv.attacks.pgd import PGD
from keras_adv.attacks.pgd import IterativeAttack

__all__ = ["Attack", "BIM", "FGSM", "IterativeAttack", "MIM", "PGD"]
