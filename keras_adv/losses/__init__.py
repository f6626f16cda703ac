"""Losses: attack objectives, robust-training terms and GAN losses."""

from keras_adv.losses.margin import cross_entropy
from keras_adv.losses.margin import margin_loss

__all__ = ["cross_entropy", "margin_loss"]
