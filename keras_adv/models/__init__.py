"""keras_adv.models."""

__all__ = []
