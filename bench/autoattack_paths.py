"""AutoAttack's two doors on the same model, samples and machine.

`AutoAttack.evaluate` (the reference's schedule: each attack only on the
samples still robust) against `evaluate_robustness(attacks=...)` with the
same AutoAttack (what `keras-adv evaluate --attack autoattack` runs, with
its gradient-masking checks by default), in one process: a warm-up of
both on a few samples (every graph traced), then each door timed on the
same test images of the embedded MNIST subset, in alternating order over
`--repeats`. Prints the seconds per sample of each, their ratio, and
whether both found the same robust samples.

The model: `--model PATH` (a saved `.keras` classifier of 28x28x1 inputs in
[0, 1]); `--pgd-epochs N`, the CNN of the PGD-7 recipe
(`keras_adv.recipes.mnist_adversarial_training("pgd")`) trained for N
epochs (20, its default, makes it robust, and every attack of the
ensemble works; 4 are too few: it does not learn the task); or by
default `keras_adv.models.small_cnn()` trained clean for `--epochs` on the
subset's 4,000 training images (APGD-CE alone fools it at eps 0.3).

    python bench/autoattack_paths.py [--samples 200] [--eps 0.3] \
        [--batch-size 128] [--model PATH | --pgd-epochs 20] [--repeats 1] \
        [--one-graph] [--epochs 2] [--train-samples 4000]

(tiny smoke run: `--samples 8 --epochs 1 --train-samples 256`).

`--one-graph` also times the one-graph `AutoAttack.__call__` in batches of
`--batch-size` (the way `evaluate_robustness` ran an AutoAttack before it
ran the schedule).
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.attacks import AutoAttack  # noqa: E402
from keras_adv.evaluation import evaluate_robustness  # noqa: E402

WARM_UP = 8


def trained_model(epochs, seed=0, train_samples=None):
    """The small CNN trained briefly (clean) on the subset's training set
    (its first `train_samples` images; all 4,000 by default)."""
    (x, y), _ = keras_adv.datasets.load_mnist_subset()
    x, y = x[:train_samples], y[:train_samples]
    keras.utils.set_random_seed(seed)
    model = keras_adv.models.small_cnn()
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


class Recorder:
    """Keeps the per-sample results of `AutoAttack.run_schedule` calls."""

    def __init__(self, attack):
        self.robust = []
        self._run = attack.run_schedule

        def run(*args, **kwargs):
            out = self._run(*args, **kwargs)
            self.robust.append(out[0])
            return out

        attack.run_schedule = run


def by_evaluate(attack, model, x, y, batch_size):
    report = attack.evaluate(model, x, y, batch_size=batch_size, verbose=0)
    return report.robust_accuracy, report.robust


def by_evaluate_robustness(attack, model, x, y, batch_size, eps, checks):
    recorder = Recorder(attack)
    try:
        report = evaluate_robustness(
            model,
            (x, y),
            {"autoattack": attack},
            epsilons=[0.0, eps],
            batch_size=batch_size,
            checks=checks,
            verbose=0,
        )
    finally:
        del attack.run_schedule  # back to the class's method
    return report.accuracy("autoattack", eps), recorder.robust[-1]


def by_one_graph(attack, model, x, y, batch_size):
    x_adv = np.concatenate(
        [
            np.asarray(
                attack(model, x[i : i + batch_size], y[i : i + batch_size])
            )
            for i in range(0, len(x), batch_size)
        ]
    )
    robust = np.asarray(model(x_adv)).argmax(1) == y
    return float(robust.mean()), robust


def main(argv=None):
    """Prints the table; returns its rows (dicts)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--train-samples",
        type=int,
        default=None,
        help="train the small CNN on this many images (default: all 4,000)",
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--pgd-epochs", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--one-graph", action="store_true")
    args = parser.parse_args(argv)
    if args.model:
        model = keras.saving.load_model(args.model, safe_mode=True)
    elif args.pgd_epochs:
        model = keras_adv.recipes.mnist_adversarial_training(
            "pgd", epochs=args.pgd_epochs, monitor=False
        ).model
    else:
        model = trained_model(args.epochs, train_samples=args.train_samples)
    _, (x, y) = keras_adv.datasets.load_mnist_subset()
    x, y = x[: args.samples], y[: args.samples]
    attack = AutoAttack(eps=args.eps, seed=0)
    bs, eps = args.batch_size, args.eps
    doors = {
        "AutoAttack.evaluate": lambda n: by_evaluate(
            attack, model, x[:n], y[:n], bs
        ),
        "evaluate_robustness, checks (CLI default)": (
            lambda n: by_evaluate_robustness(
                attack, model, x[:n], y[:n], bs, eps, True
            )
        ),
        "evaluate_robustness, no checks": lambda n: by_evaluate_robustness(
            attack, model, x[:n], y[:n], bs, eps, False
        ),
    }
    if args.one_graph:
        doors["one graph per batch (before)"] = lambda n: by_one_graph(
            attack, model, x[:n], y[:n], bs
        )
    for run in doors.values():
        run(WARM_UP)  # traces every graph
    seconds = {name: [] for name in doors}
    results = {}
    for r in range(args.repeats):
        order = list(doors) if r % 2 == 0 else list(doors)[::-1]
        for name in order:
            start = time.perf_counter()
            results[name] = doors[name](len(x))
            seconds[name].append(time.perf_counter() - start)
            print(f"{name}: {seconds[name][-1]:.1f} s", flush=True)
    base = np.median(seconds["AutoAttack.evaluate"])
    reference = results["AutoAttack.evaluate"][1]
    print(
        f"\n{len(x)} MNIST-subset test images, L-inf eps {eps}, batch "
        f"{bs}, {args.repeats} repeat(s); clean accuracy "
        f"{np.mean(np.asarray(model(x)).argmax(1) == y):.3f}\n"
    )
    print("| door | s/sample | ratio | robust accuracy | same robust samples |")
    print("|---|---|---|---|---|")
    rows = []
    for name, times in seconds.items():
        accuracy, robust = results[name]
        same = bool(np.array_equal(robust, reference))
        rows.append(
            {
                "door": name,
                "seconds_per_sample": float(np.median(times) / len(x)),
                "ratio": float(np.median(times) / base),
                "robust_accuracy": float(accuracy),
                "same_robust_samples": same,
            }
        )
        print(
            f"| {name} | {np.median(times) / len(x):.3f} | "
            f"{np.median(times) / base:.3f} | {100 * accuracy:.1f} % | "
            f"{'yes' if same else 'no'} |"
        )
    return rows


if __name__ == "__main__":
    main()
