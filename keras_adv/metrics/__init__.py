"""keras_adv.metrics."""

from keras_adv.metrics._coverage import class_coverage
from keras_adv.metrics._frechet import ClassifierFrechetDistance
from keras_adv.metrics._frechet import feature_extractor
from keras_adv.metrics._frechet import feature_statistics
from keras_adv.metrics._frechet import frechet_distance
from keras_adv.metrics._frechet import frechet_distance_from_statistics

__all__ = []
__all__ += [
    "class_coverage",
    "ClassifierFrechetDistance",
    "feature_extractor",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_statistics",
]
