"""keras_adv.datasets."""

__all__ = []
