"""keras_adv.models."""

from keras_adv.models.adversarial_model import AdversarialModel
from keras_adv.models.dcgan import dcgan_discriminator
from keras_adv.models.dcgan import dcgan_generator
from keras_adv.models.gan import GAN
from keras_adv.models.softmax_gan import SoftmaxGAN

__all__ = []
__all__ += ["GAN", "SoftmaxGAN", "dcgan_discriminator", "dcgan_generator"]
__all__ += ["AdversarialModel"]
