"""Quality measures for generated samples, in a classifier's feature space.

Start with `ClassifierFrechetDistance`, which compares generated samples
with real ones through a trained classifier: the Fréchet distance between
the two feature distributions and how the classifier labels the generated
samples (`class_coverage`: every class present, and how confidently).
`feature_extractor`, `feature_statistics`, `frechet_distance` and
`frechet_distance_from_statistics` are its steps as plain functions, for
other feature spaces.
"""

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
