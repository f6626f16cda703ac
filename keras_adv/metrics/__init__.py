"""Quality measures for generated samples, in a classifier's feature space.

Start with `ClassifierFrechetDistance`, which compares generated samples
with real ones through a trained classifier: the Fréchet distance between
the two feature distributions and how the classifier labels the generated
samples (`class_coverage`: every class present, and how confidently).
`frechet_distance` is the distance itself as a plain function, for
features from any other feature space.
"""

from keras_adv import _api
from keras_adv.metrics._coverage import class_coverage
from keras_adv.metrics._frechet import ClassifierFrechetDistance
from keras_adv.metrics._frechet import frechet_distance

__all__ = []
__all__ += [
    "class_coverage",
    "ClassifierFrechetDistance",
    "frechet_distance",
]

# Helpers that were public before 0.2 (see CHANGELOG.md): still importable
# from here, with a DeprecationWarning.
_DEPRECATED = {
    "feature_extractor": ("keras_adv.metrics._frechet", "feature_extractor"),
    "feature_statistics": ("keras_adv.metrics._frechet", "feature_statistics"),
    "frechet_distance_from_statistics": (
        "keras_adv.metrics._frechet",
        "frechet_distance_from_statistics",
    ),
}

__getattr__ = _api.deprecated_names(__name__, _DEPRECATED)
