"""Benchmark on a GPU: the ratios of the CPU benches, measured on `/GPU:0`.

The same cases as `bench/attacks.py` (FGSM and PGD-20 on 256 MNIST-shaped
inputs through `small_cnn`, against the hand-written `tf.function` loop),
with and without XLA, and as `bench/training.py` (one epoch of `fit` with
`AdversarialTraining` against the hand-written fused step, per objective),
built from those scripts' own functions. Ratios are medians of interleaved
runs after a warm-up: 1.00 means no overhead.

    python bench/gpu.py [--repeats 15] [--batch 256] [--epochs 5]

Without a GPU (`tf.config.list_physical_devices("GPU")` is empty) it says
so and exits with status 0; `--cpu` runs the same measurements on the CPU
(a check of the script, not GPU figures).
"""

import argparse
import importlib.util
import os
import platform
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name):
    """A sibling bench script as a module (`bench/` is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", os.path.join(HERE, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def device_name(device):
    if device.device_type != "GPU":
        return platform.processor() or platform.machine()
    details = tf.config.experimental.get_device_details(device)
    return details.get("device_name", device.name)


def attack_rows(bench, batch, repeats, jit):
    """`bench/attacks.py`'s cases (FGSM, PGD-20) with `jit_compile=jit`."""
    import keras

    import keras_adv
    from keras_adv.testing import small_cnn

    keras.utils.set_random_seed(0)
    model = small_cnn(input_shape=(28, 28, 1), num_classes=10)
    rng = np.random.default_rng(0)
    x = tf.constant(
        rng.uniform(0, 1, size=(batch, 28, 28, 1)).astype("float32")
    )
    y = tf.constant(rng.integers(0, 10, size=batch).astype("int32"))
    cases = [
        (
            "FGSM (Linf)",
            keras_adv.attacks.FGSM(eps=0.3, jit_compile=jit),
            bench.handwritten_pgd(model, 1, False, jit),
        ),
        (
            "PGD-20 (Linf)",
            keras_adv.attacks.PGD(eps=0.3, steps=20, seed=0, jit_compile=jit),
            bench.handwritten_pgd(model, 20, True, jit),
        ),
    ]
    return [
        bench.bench_case(name, model, attack, baseline, x, y, repeats)
        for name, attack, baseline in cases
    ]


def training_rows(bench, objectives, samples, steps, epochs):
    """`bench/training.py`'s fit / fused-step ratio per objective."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(samples, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=samples).astype("int64")
    rows = []
    for objective in objectives:
        fit_t, fused_t, ratio = bench.time_pair(objective, steps, x, y, epochs)
        rows.append((objective, fit_t, fused_t, ratio))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument(
        "--epochs", type=int, default=5, help="timed epochs per objective"
    )
    parser.add_argument(
        "--objectives",
        nargs="*",
        default=["clean", "fgsm-rs", "pgd", "trades", "vat"],
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="measure on the CPU when there is no GPU (checks the script)",
    )
    args = parser.parse_args(argv)

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.cpu:
        print(
            "bench/gpu.py: no GPU (tf.config.list_physical_devices('GPU') "
            "is empty): nothing to measure. The CPU figures come from "
            "bench/attacks.py and bench/training.py (bench/README.md)."
        )
        return 0
    device = gpus[0] if gpus else tf.config.list_physical_devices("CPU")[0]
    where = "/GPU:0" if gpus else "/CPU:0"

    import keras

    attacks_bench = _load("attacks")
    training_bench = _load("training")
    print(
        f"# {device_name(device)} ({where}), TF {tf.__version__}, Keras "
        f"{keras.__version__}, batch {args.batch}, repeats {args.repeats}"
    )
    with tf.device(where):
        print("| case | XLA | keras_adv (ms) | hand-written (ms) | ratio |")
        print("|---|---|---|---|---|")
        for jit in (False, True):
            for r in attack_rows(attacks_bench, args.batch, args.repeats, jit):
                print(
                    f"| {r['case']} | {'yes' if jit else 'no'} | "
                    f"{r['keras_adv_ms']:.1f} | {r['handwritten_ms']:.1f} | "
                    f"{r['ratio']:.3f} |"
                )
        rows = training_rows(
            training_bench,
            args.objectives,
            args.samples,
            args.steps,
            args.epochs,
        )
    clean = {o: t for o, t, _, _ in rows}.get("clean")
    print()
    print(
        f"{args.samples} samples, batch {training_bench.BATCH}, "
        f"small_cnn(width=16), median of {args.epochs} epochs"
    )
    print("| objective | fit s/epoch | fused s/epoch | ratio | vs clean |")
    print("|---|---|---|---|---|")
    label = {"pgd": f"pgd-{args.steps}", "trades": f"trades-{args.steps}"}
    for objective, fit_t, fused_t, ratio in rows:
        vs_clean = f"{fit_t / clean:.2f}" if clean else "-"
        print(
            f"| {label.get(objective, objective)} | {fit_t:.3f} | "
            f"{fused_t:.3f} | {ratio:.2f} | {vs_clean} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
