"""Recipes: complete adversarial-training runs, one call each.

A recipe is the documented way to do a whole job with keras_adv: the
callbacks, their settings and the final measurement, written once.
`keras-adv demo`, `keras-adv train`, `examples/adversarial_training_mnist.py`,
`examples/generated_data_mnist.py` and the quality tests all call these
functions, so the figures in the documentation come from the code users
run.

* `robust_fit`: trains any Keras classifier with the recipe's callbacks
  for a method, on real data or on real and generated data mixed per
  batch, optionally with weight averaging.
* `mnist_adversarial_training`: the MNIST recipe of the README.
* `generate_training_data`: pseudo-labelled samples of a class-conditional
  GAN trained on the real data alone (Gowal et al. 2021).
* `mnist_generated_data_training`: the generated-data pipeline on MNIST,
  judged by AutoAttack.
"""

from keras_adv.recipes._generated import GeneratedData
from keras_adv.recipes._generated import generate_training_data
from keras_adv.recipes._generated import mnist_generated_data_training
from keras_adv.recipes._mnist import mnist_adversarial_training
from keras_adv.recipes._robust_fit import METHODS
from keras_adv.recipes._robust_fit import TrainingRun
from keras_adv.recipes._robust_fit import robust_fit

__all__ = [
    "METHODS",
    "GeneratedData",
    "TrainingRun",
    "generate_training_data",
    "mnist_adversarial_training",
    "mnist_generated_data_training",
    "robust_fit",
]
