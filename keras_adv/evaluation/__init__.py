"""keras_adv.evaluation."""

__all__ = []
