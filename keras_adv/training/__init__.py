"""Adversarial-training objectives and the engine's public pieces.

An `Objective` says what one adversarial training step optimises; the same
objects work in `keras_adv.models.AdversarialModel` and in the
`keras_adv.callbacks.AdversarialTraining` callback.
"""

from keras_adv.training._fast import NFGSM
from keras_adv.training._fast import Free
from keras_adv.training._fast import GradAlign
from keras_adv.training._madry import FGSMRS
from keras_adv.training._madry import Madry
from keras_adv.training._max_loss import MaxLoss
from keras_adv.training._objective import Objective
from keras_adv.training._objective import scale_for_replicas
from keras_adv.training._objective import weighted_batch_mean
from keras_adv.training._registry import get
from keras_adv.training._regularised import TRADES
from keras_adv.training._regularised import VAT
from keras_adv.training._regularised import labelled_mask

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
