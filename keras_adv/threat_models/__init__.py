"""Threat models: the sets an adversary may move an input within."""

from keras_adv.threat_models._balls import L2Ball
from keras_adv.threat_models._balls import LinfBall
from keras_adv.threat_models._balls import ThreatModel
from keras_adv.threat_models._balls import get
from keras_adv.threat_models._learned import LearnedPerturbationSet

__all__ = ["L2Ball", "LinfBall", "ThreatModel", "get"]
__all__ += ["LearnedPerturbationSet"]
