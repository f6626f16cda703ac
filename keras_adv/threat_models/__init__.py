"""Threat models: the sets an adversary may move an input within.

An attack's `eps`, `norm` and `value_range` define its threat model, so
most users never build one. `LinfBall` and `L2Ball` (or `get("linf")`)
project onto the ball and the value range, draw random starts and give
the steepest-ascent direction and the distance; subclass `ThreatModel`
for another set. `LearnedPerturbationSet` is the latent ball of a
trained `keras_adv.models.PerturbationCVAE`, the threat model of
`keras_adv.attacks.LatentPGD`.
"""

from keras_adv.threat_models._balls import L2Ball
from keras_adv.threat_models._balls import LinfBall
from keras_adv.threat_models._balls import ThreatModel
from keras_adv.threat_models._balls import get
from keras_adv.threat_models._learned import LearnedPerturbationSet

__all__ = ["L2Ball", "LinfBall", "ThreatModel", "get"]
__all__ += ["LearnedPerturbationSet"]
