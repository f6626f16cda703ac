"""keras_adv.layers."""

__all__ = []
