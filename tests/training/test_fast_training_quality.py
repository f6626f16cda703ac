"""Quality of the single-step objectives on the embedded MNIST subset.

The setting of `bench/fast_training.py` (the quality recipe's CNN,
`keras_adv.testing.mnist_cnn`, Adam 1e-3, batch 16, 20 epochs with the eps
warming up over the first 6, 4,000 training images) judged by the
standard AutoAttack on the 1,000 test images, the number keras_adv quotes.

The issue's bar: the best single-step objective within 2 points of the
PGD-7 recipe's AutoAttack accuracy, at no more than 2.2x the wall time of
clean training (the time is measured by `bench/fast_training.py`, never
asserted here). Measured (2026-12-01):

* eps 0.3: PGD-7 80.1 %; the best single-step objective is Free-4 for 10
  epochs (as many passes as 40 clean epochs, 1.2-1.5x clean time) at
  65.8 %; N-FGSM 19.5 %, GradAlign 8.6 %, FGSM-RS 1.4 %. The bar is NOT
  reached at eps 0.3 (the xfail test below keeps it visible).
* eps 0.2: PGD-7 83.8 %; N-FGSM 84.0 % at 1.3x clean time: the bar is
  reached at eps 0.2.

Slow (training plus AutoAttack, 5-10 minutes each on 2 CPU cores): run
with `python dev.py test --slow tests/training/test_fast_training_quality.py`.
"""

import keras
import pytest

import keras_adv
from keras_adv import datasets
from keras_adv.attacks import AutoAttack

EPOCHS = 20
BATCH = 16
SEED = 0
# AutoAttack (standard) accuracy of the PGD-7 recipe trained the same way
# (`python bench/fast_training.py --configs clean pgd7 --eps E`).
PGD7_AUTOATTACK = {0.2: 0.838, 0.3: 0.801}


def _train(objective_name, eps, epochs, **kwargs):
    (x, y), _ = datasets.load_mnist_subset()
    keras.utils.set_random_seed(SEED)
    model = keras_adv.testing.mnist_cnn(seed=SEED)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    attack = keras_adv.attacks.PGD(
        eps=eps, steps=7, step_size=eps / 3.0, seed=SEED
    )
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        verbose=0,
        callbacks=[
            keras_adv.callbacks.AdversarialTraining(
                attack,
                objective=objective_name,
                eps_warmup_epochs=epochs // 3,
                **kwargs,
            )
        ],
    )
    return model


def _autoattack(model, eps):
    _, (x, y) = datasets.load_mnist_subset()
    report = AutoAttack(eps=eps, seed=SEED).evaluate(
        model, x, y, batch_size=500
    )
    print(report.table())
    assert report.num_samples == 1000
    return report


@pytest.mark.slow
def test_n_fgsm_matches_pgd7_at_eps_0_2():
    eps = 0.2
    report = _autoattack(_train("n_fgsm", eps, EPOCHS), eps)
    assert report.clean_accuracy >= 0.95
    assert report.robust_accuracy >= PGD7_AUTOATTACK[eps] - 0.02


@pytest.fixture(scope="module")
def free_report():
    eps = 0.3
    # 10 epochs of 4 replays: as many passes as 40 clean epochs.
    return _autoattack(_train("free", eps, 10, replays=4), eps)


@pytest.mark.slow
def test_free_is_the_best_single_step_objective_at_eps_0_3(free_report):
    assert free_report.clean_accuracy >= 0.95
    assert free_report.robust_accuracy >= 0.60  # measured 65.8 %


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="the bar is not reached at eps 0.3 (best: Free-4, 65.8 % vs "
    "80.1 % - 2 for PGD-7)",
)
def test_single_step_bar_at_eps_0_3(free_report):
    assert free_report.robust_accuracy >= PGD7_AUTOATTACK[0.3] - 0.02
