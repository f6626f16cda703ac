"""Fast adversarial training on MNIST: every objective, its cost and robustness.

Trains the quality recipe's CNN (`keras_adv.testing.mnist_cnn`, Adam 1e-3,
batch 16, eps warm-up over the first third of the epochs) on the embedded
MNIST subset (4,000 training images) with each objective at L-inf eps 0.3,
in one process, and measures on the 1,000 test images:

* clean accuracy;
* robust accuracy under `--judge`: `autoattack` (the standard AutoAttack,
  the number to quote) or `apgd-ce` (APGD-CE alone, 100 iterations, a
  cheaper screen that can only overstate robustness);
* the training wall time (the sum of the epochs' times, without the
  watching guard's evaluation) and its ratio to clean training for the
  same number of epochs (clean training runs first and last; the ratio
  uses their mean);
* whether catastrophic overfitting occurred: the robust accuracy (PGD-10
  on 500 training images, measured after every epoch by an
  `OverfittingGuard` with `drop=1.0`, which only watches) fell by
  more than 0.2 from its best, or the guard stopped training (only
  `fgsm_rs_guard` lets it stop: a drop of more than 0.2 from one epoch to
  the next stops training and restores the previous epoch's weights).

Free-m is listed with its epochs: `free4_5ep` replays every minibatch 4 times
for 5 epochs, as many optimizer updates as 20 clean epochs.

    python bench/fast_training.py [--configs clean n_fgsm free4_5ep ...]
        [--judge autoattack] [--out DIR] [--epochs 20]

Each trained model is saved to `--out` (`<config>.keras`) and each result
appended to `--out/results.jsonl`; `--evaluate-only` re-judges saved models.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_adv  # noqa: E402

EPS = 0.3
BATCH = 16
SEED = 0
GUARD_SAMPLES = 500
COLLAPSE = 0.2


def objective_for(name, attack):
    """`(objective or None, epochs divisor, guard stops training)`."""
    T = keras_adv.training
    table = {
        "clean": (None, 1, False),
        "pgd7": (T.Madry(attack), 1, False),
        "trades": (T.TRADES(attack, beta=6.0), 1, False),
        "fgsm_rs": (T.FGSMRS(attack, step_factor=1.25), 1, False),
        "fgsm_rs_guard": (T.FGSMRS(attack, step_factor=1.25), 1, True),
        "n_fgsm": (T.NFGSM(attack), 1, False),
        "n_fgsm_k1": (T.NFGSM(attack, noise_multiplier=1.0), 1, False),
        "grad_align": (T.GradAlign(attack, grad_align_lambda=1.0), 1, False),
    }
    if name in table:
        return table[name]
    if name.startswith("free"):
        # free<m>_<E>ep: m replays for E epochs.
        replays, epochs = name[4:].split("_")
        replays = int(replays)
        return T.Free(attack, replays=replays), ("ep", int(epochs[:-2])), False
    raise ValueError(f"Unknown config {name!r}")


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch's training, without the guard's evaluation."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def train(name, data, epochs):
    x, y = data
    keras.utils.set_random_seed(SEED)
    model = keras_adv.testing.mnist_cnn(seed=SEED)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    attack = keras_adv.attacks.PGD(
        eps=EPS, steps=7, step_size=EPS / 3.0, seed=SEED
    )
    objective, divisor, stops = objective_for(name, attack)
    if isinstance(divisor, tuple):
        epochs = divisor[1]
    callbacks = []
    if objective is not None:
        callbacks.append(
            keras_adv.callbacks.AdversarialTraining(
                objective=objective, eps_warmup_epochs=epochs // 3
            )
        )
    # drop=1.0 never fires: the guard then only watches (and logs).
    guard = keras_adv.callbacks.OverfittingGuard(
        (x[:GUARD_SAMPLES], y[:GUARD_SAMPLES]),
        keras_adv.attacks.PGD(eps=EPS, steps=10, seed=SEED),
        drop=COLLAPSE if stops else 1.0,
        restore_best_weights=True,
    )
    callbacks.append(guard)
    timer = EpochTimer()
    callbacks.insert(0, timer)  # its on_epoch_end runs before the guard's
    start = time.perf_counter()
    history = model.fit(
        x, y, batch_size=BATCH, epochs=epochs, callbacks=callbacks, verbose=0
    )
    seconds = time.perf_counter() - start
    epoch_seconds = float(np.sum(timer.seconds))
    watched = history.history.get("guard_robust_accuracy", [])
    collapsed = bool(guard.stopped_epoch is not None) or any(
        max(watched[: i + 1]) - value > COLLAPSE
        for i, value in enumerate(watched)
    )
    return model, {
        "config": name,
        "epochs_trained": len(history.epoch),
        "train_seconds": epoch_seconds,
        "fit_seconds_with_guard": seconds,
        "guard_robust_accuracy": [round(float(v), 4) for v in watched],
        "stopped_epoch": guard.stopped_epoch,
        "catastrophic_overfitting": collapsed,
    }


def judge(model, x, y, how):
    if how == "autoattack":
        report = keras_adv.attacks.AutoAttack(eps=EPS, seed=SEED).evaluate(
            model, x, y, batch_size=500
        )
        return {
            "clean_accuracy": report.clean_accuracy,
            "robust_accuracy": report.robust_accuracy,
            "robust_after": report.robust_after,
            "judge": "AutoAttack standard",
            "judge_seconds": report.total_seconds,
            "flags": list(report.flags),
        }
    start = time.perf_counter()
    if how == "none":  # only the clean accuracy (timing runs)
        clean = float(np.mean(np.argmax(model.predict(x, verbose=0), -1) == y))
        return {
            "clean_accuracy": clean,
            "robust_accuracy": float("nan"),
            "judge": "none",
        }
    clean = float(np.mean(np.argmax(model.predict(x, verbose=0), -1) == y))
    attack = keras_adv.attacks.APGD(eps=EPS, seed=SEED)
    x_adv = np.concatenate(
        [
            np.asarray(attack(model, x[i : i + 500], y[i : i + 500]))
            for i in range(0, len(x), 500)
        ]
    )
    robust = float(np.mean(np.argmax(model.predict(x_adv, verbose=0), -1) == y))
    return {
        "clean_accuracy": clean,
        "robust_accuracy": robust,
        "judge": "APGD-CE (100 iterations)",
        "judge_seconds": time.perf_counter() - start,
    }


def main():
    global EPS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs",
        nargs="*",
        default=[
            "clean",
            "fgsm_rs",
            "fgsm_rs_guard",
            "n_fgsm",
            "grad_align",
            "free4_5ep",
            "free8_5ep",
            "pgd7",
            "trades",
        ],
    )
    parser.add_argument(
        "--judge",
        choices=["autoattack", "apgd-ce", "none"],
        default="autoattack",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--eps", type=float, default=EPS)
    parser.add_argument("--out", default="fast_training_runs")
    parser.add_argument("--evaluate-only", action="store_true")
    parser.add_argument("--train-samples", type=int, default=None)
    parser.add_argument("--test-samples", type=int, default=None)
    args = parser.parse_args()
    EPS = args.eps
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    x_train, y_train = (
        x_train[: args.train_samples],
        y_train[: args.train_samples],
    )
    x_test, y_test = x_test[: args.test_samples], y_test[: args.test_samples]
    clean_seconds = []
    rows = []
    configs = list(args.configs)
    if not args.evaluate_only and configs and configs[-1] != "clean":
        configs.append("clean")  # clean runs first and last
    for name in configs:
        path = out / f"{name}.keras"
        if args.evaluate_only:
            model = keras.saving.load_model(path, safe_mode=True)
            row = {"config": name}
        else:
            model, row = train(name, (x_train, y_train), args.epochs)
            model.save(path)
            if name == "clean":
                clean_seconds.append(row["train_seconds"])
                if len(clean_seconds) > 1:
                    continue  # the closing clean run only times
        row.update(judge(model, x_test, y_test, args.judge))
        row["eps"] = EPS
        rows.append(row)
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    if clean_seconds:
        base = float(np.mean(clean_seconds))
        print(f"clean training: {clean_seconds} s (mean {base:.1f})")
        print(
            f"{'config':<16}{'epochs':>7}{'clean':>8}{'robust':>8}"
            f"{'train s':>9}{'vs clean':>9}  CO"
        )
        for row in rows:
            print(
                f"{row['config']:<16}{row['epochs_trained']:>7}"
                f"{row['clean_accuracy']:>8.3f}{row['robust_accuracy']:>8.3f}"
                f"{row['train_seconds']:>9.1f}"
                f"{row['train_seconds'] / base:>9.2f}"
                f"  {row['catastrophic_overfitting']}"
            )


if __name__ == "__main__":
    main()
