"""keras_adv.metrics."""

__all__ = []
