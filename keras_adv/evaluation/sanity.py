"""Gradient-masking sanity checks (Carlini et al. 2019; Croce & Hein 2020).

A defence that only hides its gradients looks robust to gradient attacks
without being robust. These checks look for the usual symptoms in the
numbers `evaluate_robustness` measured and return human-readable warnings:

* `multistep_weaker`: a multi-step attack is less successful than a
  single-step one of the same norm (the iterative attack should be at
  least as strong);
* `accuracy_rises`: accuracy under an attack increases with eps (a larger
  ball contains the smaller one);
* `unbounded_not_zero`: an L-inf PGD whose ball covers the whole value
  range (it may output any valid input) leaves more than ~2% of samples
  correctly classified;
* `noise_beats_attack`: random noise of the same norm (random corners of
  the L-inf ball, random directions on the L2 sphere) lowers accuracy more
  than the gradient attack;
* `zero_gradients`: more than 10% of samples have an input gradient of the
  attack loss that is exactly zero (non-differentiable input processing,
  or a saturated softmax whose cross-entropy gradient underflows);
* `probability_outputs`: the model outputs values in [0, 1] that are not
  a softmax (rows not summing to 1, e.g. sigmoids), which the attacks
  treat as logits, or a softmax saturated on more than 10% of samples
  (top probability rounds to 1 in float32), through which gradients
  vanish. A softmax that is explicitly treated as logits
  (`from_logits=True` on a model that outputs probabilities) is refused
  with a `ValueError` by the attacks themselves.

Differences smaller than `tolerance(n)` (1 percentage point plus one
sample) are ignored, so the checks do not fire on sampling noise.

Reference:
    Carlini et al., "On Evaluating Adversarial Robustness", 2019,
    [arXiv:1902.06705](https://arxiv.org/abs/1902.06705). Athalye, Carlini and
    Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018,
    [arXiv:1802.00420](https://arxiv.org/abs/1802.00420). Croce and Hein,
    "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020,
    [arXiv:2003.01690](https://arxiv.org/abs/2003.01690).
"""

from collections.abc import Mapping
from typing import Any

UNBOUNDED_MAX_ACCURACY = 0.02
ZERO_GRADIENT_MAX_SHARE = 0.1
SATURATED_MAX_SHARE = 0.1


def tolerance(num_samples: int) -> float:
    """Accuracy differences below this are treated as noise."""
    return 0.01 + 1.0 / max(int(num_samples), 1)


def _pct(value: float) -> str:
    return f"{100.0 * value:.1f}%"


def gradient_masking_warnings(
    report_data: Mapping[str, Any], checks: Mapping[str, Any]
) -> list[str]:
    """Returns the list of warnings for measured figures.

    Args:
        report_data: Dict with `num_samples`, `epsilons` and `attacks`
            (entries with `"norm"`, `"steps"`, `"accuracy"`), as in
            `RobustnessReport.to_dict()` plus each attack's step count.
        checks: Dict of check measurements: `"noise_accuracy"` (norm ->
            list aligned with epsilons), `"unbounded_accuracy"`,
            `"unbounded_eps"`, `"zero_gradient_share"`, `"output_kind"`,
            `"saturated_share"`.

    Returns:
        A list of strings, empty when no check fires.

    Example:

    >>> from keras_adv.evaluation import sanity
    >>> numbers = {"num_samples": 1000, "epsilons": [0.0, 0.3], "attacks": {
    ...     "fgsm": {"norm": "linf", "steps": 1, "accuracy": [0.9, 0.2]},
    ...     "pgd": {"norm": "linf", "steps": 10, "accuracy": [0.9, 0.5]}}}
    >>> [w.split(":")[0] for w in sanity.gradient_masking_warnings(numbers, {})]
    ['multistep_weaker']
    """
    warnings = []
    n = report_data["num_samples"]
    tol = tolerance(n)
    epsilons = report_data["epsilons"]
    attacks = report_data["attacks"]

    # A multi-step attack must not be weaker than a single-step one.
    for multi, m_entry in attacks.items():
        if (m_entry.get("steps") or 1) <= 1:
            continue
        for single, s_entry in attacks.items():
            if s_entry.get("steps", 1) != 1:  # None: not a step count
                continue
            if s_entry["norm"] != m_entry["norm"]:
                continue
            for i, eps in enumerate(epsilons):
                if eps <= 0:
                    continue
                a_multi = m_entry["accuracy"][i]
                a_single = s_entry["accuracy"][i]
                if a_multi > a_single + tol:
                    warnings.append(
                        f"multistep_weaker: {multi} ({m_entry['steps']} "
                        f"steps) leaves {_pct(a_multi)} accuracy at "
                        f"eps={eps:g}, more than single-step {single} "
                        f"({_pct(a_single)}): the loss surface is likely "
                        "masked (noisy or flat gradients)."
                    )
                    break

    # Accuracy must not rise with eps.
    for name, entry in attacks.items():
        acc = entry["accuracy"]
        for i in range(1, len(epsilons)):
            if acc[i] > acc[i - 1] + tol:
                warnings.append(
                    f"accuracy_rises: under {name}, accuracy rises from "
                    f"{_pct(acc[i - 1])} at eps={epsilons[i - 1]:g} to "
                    f"{_pct(acc[i])} at eps={epsilons[i]:g}; a larger "
                    "ball should never help the model."
                )
                break

    unbounded = checks.get("unbounded_accuracy")
    n_unbounded = checks.get("unbounded_samples", n)
    if unbounded is not None and unbounded > UNBOUNDED_MAX_ACCURACY + (
        1.0 / max(n_unbounded, 1)
    ):
        warnings.append(
            f"unbounded_not_zero: PGD with eps={checks['unbounded_eps']:g} "
            "(the whole value range: any input is reachable) still leaves "
            f"{_pct(unbounded)} accuracy on {n_unbounded} samples; it "
            "should reach ~0%. Gradients do not lead the attack."
        )

    noise = checks.get("noise_accuracy", {})
    for name, entry in attacks.items():
        noise_acc = noise.get(entry["norm"])
        if noise_acc is None:
            continue
        for i, eps in enumerate(epsilons):
            if eps <= 0:
                continue
            if noise_acc[i] < entry["accuracy"][i] - tol:
                warnings.append(
                    f"noise_beats_attack: random {entry['norm']} noise of "
                    f"radius {eps:g} leaves {_pct(noise_acc[i])} accuracy, "
                    f"less than {name} ({_pct(entry['accuracy'][i])}); "
                    "the attack's gradients are not informative."
                )
                break

    zero = checks.get("zero_gradient_share")
    if zero is not None and zero > ZERO_GRADIENT_MAX_SHARE:
        warnings.append(
            f"zero_gradients: {_pct(zero)} of samples have an input "
            "gradient that is exactly zero (non-differentiable input "
            "processing such as rounding, or a saturated softmax). "
            "Gradient attacks cannot move these samples; try loss='margin'"
            " or attack a differentiable approximation (BPDA)."
        )

    kind = checks.get("output_kind")
    if kind == "bounded":
        warnings.append(
            "probability_outputs: the model outputs values in [0, 1] whose "
            "rows do not sum to 1 (e.g. sigmoids); the attacks treat them "
            "as logits and their gradients saturate. Evaluate a model that "
            "outputs logits (drop the final activation)."
        )
    saturated = checks.get("saturated_share")
    if (
        kind == "probabilities"
        and saturated is not None
        and saturated > SATURATED_MAX_SHARE
    ):
        warnings.append(
            f"probability_outputs: the model outputs probabilities and its "
            f"softmax is saturated (top probability rounds to 1) on "
            f"{_pct(saturated)} of samples; gradients through it vanish. "
            "Evaluate the model without its final softmax (logits)."
        )
    return warnings
