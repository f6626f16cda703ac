"""Certified robustness: lower bounds on robust accuracy, with proofs.

An attack that fails to break a sample gives an upper bound on robust
accuracy; a certificate proves that no perturbation in the threat model
changes the prediction, a lower bound. Together they bracket the truth:
"robust accuracy at eps 0.3 lies between 71 % (certified) and 86.9 %
(AutoAttack)".
"""

__all__: list[str] = []
