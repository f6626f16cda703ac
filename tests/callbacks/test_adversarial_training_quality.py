"""Quality bar of PGD adversarial training on the embedded MNIST subset.

Both tests run the library's recipe (`keras_adv.recipes`), the code behind
`keras-adv demo` and `examples/adversarial_training_mnist.py`: the CNN of
`keras_adv.testing.mnist_cnn`, batch 16, PGD-7 (step 0.1) at eps 0.3 with
the eps warming up over the first 6 of 20 epochs, measured with PGD-20 at
eps 0.3 on the 1,000 test images.

Slow (minutes on 2 CPU cores): run with `python dev.py test --slow`.
"""

import pytest

from keras_adv import recipes

EPS = 0.3
EPOCHS = 20


def _clean_and_robust(run):
    report = run.report
    return report.clean_accuracy, report.accuracy("pgd", EPS)


@pytest.mark.slow
def test_pgd_training_reaches_the_quality_bar():
    run = recipes.mnist_adversarial_training(
        "pgd", epochs=EPOCHS, eval_epsilons=(0.0, EPS), monitor=False
    )
    assert run.epochs == EPOCHS
    clean, robust = _clean_and_robust(run)
    print(f"PGD-7 training: clean {clean:.3f}, PGD-20 robust {robust:.3f}")
    assert clean >= 0.95
    assert robust >= 0.85


@pytest.mark.slow
def test_clean_training_is_not_robust():
    run = recipes.mnist_adversarial_training(
        "clean", epochs=5, eval_epsilons=(0.0, EPS), monitor=False
    )
    clean, robust = _clean_and_robust(run)
    print(f"clean training: clean {clean:.3f}, PGD-20 robust {robust:.3f}")
    assert clean >= 0.9  # a working classifier (5 epochs) ...
    assert robust <= 0.05  # ... with no robustness at all
