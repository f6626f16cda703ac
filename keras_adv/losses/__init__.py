"""Losses: attack objectives, robust-training terms and generative losses.

Attack losses are named by string wherever an attack takes `loss=`
(`"ce"`, `"margin"`, `"dlr"`; see `get`, and `register_attack_loss` for
your own). TRADES and VAT terms (`trades_kl`, `vat_lds`, ...) are the
regularisers of `keras_adv.training`; the GAN losses (`GANLoss` and its
subclasses, named by string in `GAN.compile(loss=...)`), the AdvGAN terms
(`cw_loss`/`CWLoss`, `perturbation_hinge`/`PerturbationHinge`) and the
CVAE terms (`gaussian_kl`, the reconstructions, `BetaSchedule`) are those
of the models in `keras_adv.models`, as pure functions and as Keras
`Loss` classes where `(y_true, y_pred)` fits.
"""

from keras_adv import _api
from keras_adv.losses._advgan import CWLoss
from keras_adv.losses._advgan import PerturbationHinge
from keras_adv.losses._advgan import cw_loss
from keras_adv.losses._advgan import perturbation_hinge
from keras_adv.losses._cvae import BetaSchedule
from keras_adv.losses._cvae import bernoulli_reconstruction
from keras_adv.losses._cvae import gaussian_kl
from keras_adv.losses._cvae import gaussian_reconstruction
from keras_adv.losses._dlr import dlr_loss
from keras_adv.losses._dlr import targeted_dlr_loss
from keras_adv.losses._gan import GANLoss
from keras_adv.losses._gan import HingeGANLoss
from keras_adv.losses._gan import LeastSquaresGANLoss
from keras_adv.losses._gan import NonSaturatingGANLoss
from keras_adv.losses._gan import SoftmaxGANLoss
from keras_adv.losses._margin import cross_entropy
from keras_adv.losses._margin import get
from keras_adv.losses._margin import margin_loss
from keras_adv.losses._margin import register_attack_loss
from keras_adv.losses._robust import trades_kl
from keras_adv.losses._robust import vat_lds

__all__ = [
    "cross_entropy",
    "dlr_loss",
    "get",
    "margin_loss",
    "register_attack_loss",
    "targeted_dlr_loss",
]
__all__ += [
    "GANLoss",
    "HingeGANLoss",
    "LeastSquaresGANLoss",
    "NonSaturatingGANLoss",
    "SoftmaxGANLoss",
]
__all__ += [
    "trades_kl",
    "vat_lds",
]
__all__ += ["CWLoss", "PerturbationHinge", "cw_loss", "perturbation_hinge"]
__all__ += [
    "BetaSchedule",
    "bernoulli_reconstruction",
    "gaussian_kl",
    "gaussian_reconstruction",
]

# Helpers that were public before 0.2 (see CHANGELOG.md): still importable
# from here, with a DeprecationWarning.
_DEPRECATED = {
    "get_gan_loss": ("keras_adv.losses._gan", "get_gan_loss"),
    "hinge_discriminator_loss": (
        "keras_adv.losses._gan",
        "hinge_discriminator_loss",
    ),
    "hinge_generator_loss": ("keras_adv.losses._gan", "hinge_generator_loss"),
    "least_squares_discriminator_loss": (
        "keras_adv.losses._gan",
        "least_squares_discriminator_loss",
    ),
    "least_squares_generator_loss": (
        "keras_adv.losses._gan",
        "least_squares_generator_loss",
    ),
    "non_saturating_discriminator_loss": (
        "keras_adv.losses._gan",
        "non_saturating_discriminator_loss",
    ),
    "non_saturating_generator_loss": (
        "keras_adv.losses._gan",
        "non_saturating_generator_loss",
    ),
    "softmax_gan_discriminator_loss": (
        "keras_adv.losses._gan",
        "softmax_gan_discriminator_loss",
    ),
    "softmax_gan_generator_loss": (
        "keras_adv.losses._gan",
        "softmax_gan_generator_loss",
    ),
    "serialize": ("keras_adv.losses._margin", "serialize"),
    "kl_divergence_from_logits": (
        "keras_adv.losses._robust",
        "kl_divergence_from_logits",
    ),
    "trades_perturbation": ("keras_adv.losses._robust", "trades_perturbation"),
    "virtual_adversarial_perturbation": (
        "keras_adv.losses._robust",
        "virtual_adversarial_perturbation",
    ),
}

__getattr__ = _api.deprecated_names(__name__, _DEPRECATED)
