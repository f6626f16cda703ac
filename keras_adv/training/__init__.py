"""Adversarial-training objectives: what one adversarial step optimises.

An `Objective` is a small serialisable object holding its own
hyper-parameters; the same objects work in the
`keras_adv.callbacks.AdversarialTraining` callback (start there) and in
`keras_adv.models.AdversarialModel`. `Madry` (PGD adversarial training,
the callback's default) and `TRADES` are the multi-step objectives;
`FGSMRS`, `NFGSM`, `GradAlign` and `Free` are the cheaper single-step
ones; `VAT` also uses unlabelled data; `MaxLoss` trains learned
perturbation sets; `IBP` and `CROWNIBP` train verifiably robust models on
sound bounds instead of attacks (verified training). `get` resolves the
shorthand names (`"trades"`, `"fgsm_rs"`, ...); subclass `Objective`,
with `weighted_batch_mean`, to write your own.
"""

from keras_adv import _api
from keras_adv.training._fast import NFGSM
from keras_adv.training._fast import Free
from keras_adv.training._fast import GradAlign
from keras_adv.training._madry import FGSMRS
from keras_adv.training._madry import Madry
from keras_adv.training._max_loss import MaxLoss
from keras_adv.training._objective import Objective
from keras_adv.training._objective import weighted_batch_mean
from keras_adv.training._registry import get
from keras_adv.training._regularised import TRADES
from keras_adv.training._regularised import VAT
from keras_adv.training._verified import CROWNIBP
from keras_adv.training._verified import IBP

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
    "weighted_batch_mean",
]
__all__ += ["MaxLoss"]
__all__ += ["IBP", "CROWNIBP"]

# Helpers that were public before 0.2 (see CHANGELOG.md).
_DEPRECATED = {
    "labelled_mask": ("keras_adv.training._regularised", "labelled_mask"),
    "scale_for_replicas": (
        "keras_adv.distribute._replicas",
        "scale_for_replicas",
    ),
}

__getattr__ = _api.deprecated_names(__name__, _DEPRECATED)
