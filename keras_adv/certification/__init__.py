"""Certified robustness: lower bounds on robust accuracy, with proofs.

An attack that fails to break a sample gives an upper bound on robust
accuracy; a certificate proves that no perturbation in the threat model
changes the prediction, a lower bound. Together they bracket the truth:
"robust accuracy at eps 0.3 lies between 71 % (certified) and 86.9 %
(AutoAttack)".

Randomized smoothing (`SmoothedClassifier`, Cohen et al. 2019) certifies
L2 balls for a Gaussian-smoothed version of any classifier;
`CertificationReport` turns per-sample certificates into certified
accuracy versus radius.
"""

from keras_adv.certification._report import CertificationReport
from keras_adv.certification._smoothing import SmoothedClassifier

__all__ = [
    "CertificationReport",
    "SmoothedClassifier",
]
