"""keras_adv.models."""

from keras_adv.models._adversarial_model import AdversarialModel
from keras_adv.models._cvae import PerturbationCVAE
from keras_adv.models._cvae_nets import cvae_mnist_conv
from keras_adv.models._cvae_nets import cvae_mnist_fc
from keras_adv.models._dcgan import dcgan_discriminator
from keras_adv.models._dcgan import dcgan_generator
from keras_adv.models._gan import GAN
from keras_adv.models._softmax_gan import SoftmaxGAN

__all__ = []
__all__ += ["GAN", "SoftmaxGAN", "dcgan_discriminator", "dcgan_generator"]
__all__ += ["AdversarialModel"]
__all__ += ["PerturbationCVAE", "cvae_mnist_conv", "cvae_mnist_fc"]
