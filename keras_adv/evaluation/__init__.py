"""Robustness evaluation: the figure to report, and the checks behind it.

Start with `evaluate_robustness(model, (x, y), attacks="autoattack",
epsilons=[0.3])`: every attack at every radius against the true labels,
a per-sample worst case, and a `RobustnessReport` (text, JSON, plot) with
the gradient-masking checks of `sanity` as warnings; `certify="crown_ibp"`
(or `"ibp"`, `"crown"`, a `SmoothedClassifier`) adds certified accuracy,
the lower bound beside the attacks' upper one. `robustness_grid` and
`adversarial_grid` draw the annotated image grid of `RobustnessMonitor`;
`calibrate_radius`, `RadiusCalibration` and `perturbation_set_errors`
measure a learned perturbation set.

`SubsetEvaluation` and `attack_config` are importable from here for
keras_adv's own callbacks (`RobustnessMonitor`), but are not public (not in
`__all__`).
"""

from keras_adv import _api
from keras_adv.evaluation import sanity
from keras_adv.evaluation._attack_set import attack_config  # noqa: F401
from keras_adv.evaluation._perturbation_sets import RadiusCalibration
from keras_adv.evaluation._perturbation_sets import calibrate_radius
from keras_adv.evaluation._perturbation_sets import perturbation_set_errors
from keras_adv.evaluation._plots import adversarial_grid
from keras_adv.evaluation._plots import robustness_grid
from keras_adv.evaluation._report import RobustnessReport
from keras_adv.evaluation._robustness import evaluate_robustness
from keras_adv.evaluation._subset import SubsetEvaluation  # noqa: F401

__all__ = [
    "RobustnessReport",
    "adversarial_grid",
    "evaluate_robustness",
    "robustness_grid",
    "sanity",
]
__all__ += [
    "RadiusCalibration",
    "calibrate_radius",
    "perturbation_set_errors",
]

# Helpers that were public before 0.2 (see CHANGELOG.md): still importable
# from here, with a DeprecationWarning.
_DEPRECATED = {
    "image_grid": ("keras_adv.evaluation._plots", "image_grid"),
    "tile_images": ("keras_adv.evaluation._plots", "tile_images"),
}

__getattr__ = _api.deprecated_names(__name__, _DEPRECATED)
