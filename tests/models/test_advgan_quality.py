"""Slow quality tests of AdvGAN on the embedded MNIST subset (eps 0.3).

They run `examples/advgan_mnist.py`'s functions with its settings on the
4,000 training and 1,000 test images. Run them with
`python dev.py test --slow tests/models/test_advgan_quality.py` (each
trains for a few minutes on two CPU cores).
"""

import importlib.util
import os
import runpy
import sys

import numpy as np
import pytest

import keras_adv
from keras_adv.attacks import GeneratorAttack

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
EXAMPLE = os.path.join(ROOT, "examples", "advgan_mnist.py")


def _example():
    spec = importlib.util.spec_from_file_location("advgan_mnist", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return _example()


@pytest.fixture(scope="module")
def mnist():
    return keras_adv.datasets.load_mnist_subset()


# Model C needs the wider generator (filters 16, the paper's network with
# twice the filters), kappa 10 and 30 epochs; A and B pass with the paper's.
SETTINGS = {"c": {"filters": 16, "kappa": 10.0, "epochs": 30}}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["c", "a", "b"])
def test_semi_whitebox_untargeted_success(example, mnist, name):
    (x, y), (x_test, y_test) = mnist
    model = example.train_classifier(name, x, y)
    advgan, _ = example.train_advgan(model, x, y, **SETTINGS.get(name, {}))
    success = example.untargeted_success(
        GeneratorAttack(advgan), model, x_test, y_test
    )
    print(f"model {name}: untargeted success {success:.3f}")
    assert success >= 0.97


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="the 90 % targeted bar is not reached: 86.0 % measured with "
    "TARGETED_SETTINGS (targeted PGD-100 reaches 89.9 %)",
)
def test_targeted_conditioned_generator(example, mnist):
    (x, y), (x_test, y_test) = mnist
    model = example.train_classifier("c", x, y)
    advgan, _ = example.train_advgan(
        model, x, y, targeted=True, **example.TARGETED_SETTINGS
    )
    rates = example.targeted_success(
        GeneratorAttack(advgan), model, x_test, y_test
    )
    print("targeted success per target:", np.round(rates, 3))
    assert np.mean(rates) >= 0.90


@pytest.mark.slow
def test_generator_is_100x_faster_than_pgd100():
    bench = os.path.join(ROOT, "bench", "advgan_speed.py")
    argv = sys.argv
    sys.argv = ["advgan_speed.py", "--repeats", "3"]
    try:
        namespace = runpy.run_path(bench)
        ratio = namespace["main"](["--repeats", "3"])
    finally:
        sys.argv = argv
    assert ratio >= 100


@pytest.mark.slow
def test_dynamic_distillation_beats_static(example, mnist):
    (x, y), (x_test, y_test) = mnist
    box_model = example.train_classifier("b", x, y)
    static = example.black_box_run(x, y, x_test, y_test, "static", box_model)
    dynamic = example.black_box_run(x, y, x_test, y_test, "dynamic", box_model)
    print(static, dynamic)
    assert static["queries"] == len(x)
    assert dynamic["queries"] > static["queries"]
    assert dynamic["success_on_black_box"] > static["success_on_black_box"]


@pytest.mark.slow
def test_example_quick_run(example):
    results = example.main(["--quick", "--model", "c", "--black-box"])
    assert 0.0 <= results["model_c"]["success"] <= 1.0
    assert results["black_box_dynamic"]["queries"] > 256


@pytest.mark.slow
def test_example_quick_targeted_and_reference(example):
    results = example.main(
        ["--quick", "--targeted", "--skip-connections", "--target-maps", "2"]
    )
    rates = results["model_c"]["targeted_success"]
    assert len(rates) == 10 and all(0.0 <= r <= 1.0 for r in rates)
    reference = example.main(["--quick", "--pgd-reference"])["pgd_reference_c"]
    for name in ("pgd100_ce", "pgd100_margin", "apgd100_ce_r5"):
        assert len(reference[name]) == 10
        assert reference[f"{name}_mean"] == pytest.approx(
            np.mean(reference[name])
        )
