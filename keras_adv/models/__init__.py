"""Models: the adversarial-training engine, GANs, AdvGAN, a CVAE, builders.

`AdversarialModel` wraps a classifier so that `compile`/`fit` train it
adversarially; it is the engine behind
`keras_adv.callbacks.AdversarialTraining`, which most users want instead.
`GAN` is a subclassable generative adversarial network trained with `fit`,
`SoftmaxGAN` its Softmax GAN form and `ConditionalGAN` its class-conditional
form; `AdvGAN` trains a generator that
attacks a frozen classifier in one forward pass (`Distillation` for a
black box); `PerturbationCVAE` learns a perturbation set from `(x, x~)`
pairs. The builders (`mnist_cnn`, `small_cnn`, `ibp_cnn` (verified
training; `IBPNormal` its initialization), `dcgan_*`, `advgan_*`,
`conditional_dcgan_generator`, `projection_discriminator`,
`mnist_model_a`/`_b`/`_c`, `cvae_mnist_*`) make the networks of the
examples and of the documented figures.
"""

from keras_adv.models._adversarial_model import AdversarialModel
from keras_adv.models._advgan import AdvGAN
from keras_adv.models._advgan_nets import advgan_discriminator
from keras_adv.models._advgan_nets import advgan_generator
from keras_adv.models._advgan_nets import mnist_model_a
from keras_adv.models._advgan_nets import mnist_model_b
from keras_adv.models._advgan_nets import mnist_model_c
from keras_adv.models._classifiers import ibp_cnn
from keras_adv.models._classifiers import mnist_cnn
from keras_adv.models._classifiers import small_cnn
from keras_adv.models._conditional_dcgan import conditional_dcgan_generator
from keras_adv.models._conditional_dcgan import projection_discriminator
from keras_adv.models._conditional_gan import ConditionalGAN
from keras_adv.models._cvae import PerturbationCVAE
from keras_adv.models._cvae_nets import cvae_mnist_conv
from keras_adv.models._cvae_nets import cvae_mnist_fc
from keras_adv.models._cvae_nets import cvae_mnist_stn
from keras_adv.models._dcgan import dcgan_discriminator
from keras_adv.models._dcgan import dcgan_generator
from keras_adv.models._distillation import Distillation
from keras_adv.models._gan import GAN
from keras_adv.models._initializers import IBPNormal
from keras_adv.models._softmax_gan import SoftmaxGAN

__all__ = []
__all__ += ["GAN", "SoftmaxGAN", "dcgan_discriminator", "dcgan_generator"]
__all__ += ["ConditionalGAN", "conditional_dcgan_generator"]
__all__ += ["projection_discriminator"]
__all__ += ["AdversarialModel"]
__all__ += ["AdvGAN", "advgan_discriminator", "advgan_generator"]
__all__ += ["Distillation"]
__all__ += ["mnist_model_a", "mnist_model_b", "mnist_model_c"]
__all__ += ["PerturbationCVAE", "cvae_mnist_conv", "cvae_mnist_fc"]
__all__ += ["cvae_mnist_stn"]
__all__ += ["mnist_cnn", "small_cnn"]
__all__ += ["ibp_cnn", "IBPNormal"]
