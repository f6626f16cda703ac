"""Benchmark: adversarial examples from an AdvGAN generator vs PGD-100.

Same model (MNIST model C of Carlini and Wagner), same batch of test
images, one process: `GeneratorAttack` (one generator forward pass, plus
nothing else: labels are given) against `PGD(steps=100)` (100 forward and
backward passes), both through keras_adv's compiled attack graphs. Runs are
interleaved after a warm-up; the figure is the ratio of the medians of the
time per sample. The cost of a generator does not depend on its weights,
so an untrained one measures the same as a trained one (`--generator PATH`
loads a saved generator instead).

    python dev.py bench bench/advgan_speed.py [--batch 1000] [--repeats 5]
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.attacks import PGD  # noqa: E402
from keras_adv.attacks import GeneratorAttack  # noqa: E402
from keras_adv.models import advgan_generator  # noqa: E402
from keras_adv.models import mnist_model_c  # noqa: E402


def _time(fn):
    start = time.perf_counter()
    out = fn()
    np.asarray(out)  # wait for the result
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pgd-steps", type=int, default=100)
    parser.add_argument("--generator", default=None)
    parser.add_argument("--model", default=None, help="a saved classifier")
    args = parser.parse_args(argv)

    _, (x, y) = keras_adv.datasets.load_mnist_subset()
    x, y = x[: args.batch], y[: args.batch]
    model = (
        keras.saving.load_model(args.model)
        if args.model
        else mnist_model_c(seed=0)
    )
    generator = (
        keras.saving.load_model(args.generator)
        if args.generator
        else advgan_generator(eps=0.3, seed=0)
    )
    attacks = {
        "generator": GeneratorAttack(generator, eps=0.3),
        f"pgd{args.pgd_steps}": PGD(
            eps=0.3, steps=args.pgd_steps, step_size=0.01, seed=0
        ),
    }
    x_t, y_t = tf.constant(x), tf.constant(y)
    for attack in attacks.values():  # warm-up: trace and run once
        attack(model, x_t, y_t)
    times = {name: [] for name in attacks}
    for _ in range(args.repeats):
        for name, attack in attacks.items():
            times[name].append(_time(lambda a=attack: a(model, x_t, y_t)))
    per_sample = {
        name: statistics.median(t) / len(x) for name, t in times.items()
    }
    gen, pgd = per_sample["generator"], per_sample[f"pgd{args.pgd_steps}"]
    print(
        f"{platform.machine()} TF {tf.__version__} Keras {keras.__version__}"
        f"; batch {len(x)}, {args.repeats} interleaved repeats"
    )
    for name, value in per_sample.items():
        print(
            f"{name:>10}: {1e6 * value:9.1f} us/sample "
            f"(median {statistics.median(times[name]):.3f} s per batch; "
            f"traces {attacks[name].tracing_count(model)})"
        )
    print(f"speed-up generator vs PGD-{args.pgd_steps}: {pgd / gen:.0f}x")
    return pgd / gen


if __name__ == "__main__":
    main()
