"""Adversarial-training objectives and the engine's public pieces.

An `Objective` says what one adversarial training step optimises; the same
objects work in `keras_adv.models.AdversarialModel` and in the
`keras_adv.callbacks.AdversarialTraining` callback.
"""

from keras_adv.training._fast import NFGSM
from keras_adv.training._fast import Free
from keras_adv.training._fast import GradAlign
from keras_adv.training._max_loss import MaxLoss
from keras_adv.training._objectives import FGSMRS
from keras_adv.training._objectives import TRADES
from keras_adv.training._objectives import VAT
from keras_adv.training._objectives import Madry
from keras_adv.training._objectives import Objective
from keras_adv.training._objectives import get
from keras_adv.training._objectives import labelled_mask
from keras_adv.training._objectives import scale_for_replicas
from keras_adv.training._objectives import weighted_batch_mean

__all__ = [
    "FGSMRS",
    "Free",
    "GradAlign",
    "NFGSM",
    "TRADES",
    "VAT",
    "Madry",
    "Objective",
    "get",
    "labelled_mask",
    "scale_for_replicas",
    "weighted_batch_mean",
]
__all__ += ["MaxLoss"]
