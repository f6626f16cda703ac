"""keras_adv.evaluation.

`SubsetEvaluation` and `attack_config` are importable from here for
keras_adv's own callbacks (`RobustnessMonitor`), but are not public (not in
`__all__`).
"""

from keras_adv.evaluation import sanity
from keras_adv.evaluation._attack_set import attack_config  # noqa: F401
from keras_adv.evaluation._perturbation_sets import RadiusCalibration
from keras_adv.evaluation._perturbation_sets import calibrate_radius
from keras_adv.evaluation._perturbation_sets import perturbation_set_errors
from keras_adv.evaluation._plots import adversarial_grid
from keras_adv.evaluation._plots import image_grid
from keras_adv.evaluation._plots import robustness_grid
from keras_adv.evaluation._plots import tile_images
from keras_adv.evaluation._report import RobustnessReport
from keras_adv.evaluation._robustness import evaluate_robustness
from keras_adv.evaluation._subset import SubsetEvaluation  # noqa: F401

__all__ = [
    "RobustnessReport",
    "adversarial_grid",
    "evaluate_robustness",
    "image_grid",
    "robustness_grid",
    "sanity",
    "tile_images",
]
__all__ += [
    "RadiusCalibration",
    "calibrate_radius",
    "perturbation_set_errors",
]
