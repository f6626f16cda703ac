"""keras_adv.callbacks."""

__all__ = []
