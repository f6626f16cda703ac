"""keras_adv.evaluation."""

from keras_adv.evaluation import sanity
from keras_adv.evaluation.plots import adversarial_grid
from keras_adv.evaluation.report import RobustnessReport
from keras_adv.evaluation.robustness import evaluate_robustness

__all__ = [
    "RobustnessReport",
    "adversarial_grid",
    "evaluate_robustness",
    "sanity",
]
