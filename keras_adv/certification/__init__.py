"""Certified robustness: lower bounds on robust accuracy, with proofs.

An attack that fails to break a sample gives an upper bound on robust
accuracy; a certificate proves that no perturbation in the threat model
changes the prediction, a lower bound. Together they bracket the truth:
"robust accuracy at eps 0.3 lies between 71 % (certified) and 86.9 %
(AutoAttack)".

Randomized smoothing (`SmoothedClassifier`, Cohen et al. 2019) certifies
L2 balls for a Gaussian-smoothed version of any classifier;
`CertificationReport` turns per-sample certificates into certified
accuracy versus radius. `LatentSmoothedClassifier` smooths in a learned
perturbation set's latent space instead (Wong and Kolter 2021) and
certifies latent radii of the set.

Bounds certify the model itself: `interval_bounds` (IBP, Gowal et al.
2018) bounds its logits over an L-inf or L2 ball, `margin_bounds` the
margins (IBP or CROWN-IBP, Zhang et al. 2020), and `verified_mask` and
`verified_accuracy` turn them into a proof per sample.
"""

from keras_adv.certification._bounds import interval_bounds
from keras_adv.certification._bounds import margin_bounds
from keras_adv.certification._bounds import verified_accuracy
from keras_adv.certification._bounds import verified_mask
from keras_adv.certification._latent import LatentSmoothedClassifier
from keras_adv.certification._report import CertificationReport
from keras_adv.certification._smoothing import SmoothedClassifier

__all__ = [
    "CertificationReport",
    "LatentSmoothedClassifier",
    "SmoothedClassifier",
]
__all__ += [
    "interval_bounds",
    "margin_bounds",
    "verified_accuracy",
    "verified_mask",
]
