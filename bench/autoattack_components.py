"""Each attack of AutoAttack alone, next to PGD-20 and the ensemble.

On a saved Keras model (by default the PGD-7 quality recipe, trained with
`keras_adv.recipes.mnist_adversarial_training("pgd")` when `--model` does
not exist yet), on the 1,000 test images of the embedded MNIST subset at
L-inf `--eps`: clean accuracy, then the accuracy under PGD-20, APGD-CE,
APGD-T (9 targets), FAB-T (9 targets) and Square (5,000 queries), each
run alone on every image, and AutoAttack standard (each attack on the
samples still robust), with wall times.

    python bench/autoattack_components.py [--model pgd7.keras] [--eps 0.3]
"""

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv import attacks  # noqa: E402

BATCH = 500


def accuracy(model, x, y):
    logits = model.predict(x, batch_size=BATCH, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == y))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pgd7.keras")
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not os.path.exists(args.model):
        run = keras_adv.recipes.mnist_adversarial_training(
            "pgd", epochs=20, monitor=False
        )
        run.model.save(args.model)
    model = keras.saving.load_model(args.model, safe_mode=True)
    _, (x, y) = keras_adv.datasets.load_mnist_subset()
    eps, seed = args.eps, args.seed
    rows = {"clean": (accuracy(model, x, y), 0.0)}
    for name, attack in (
        ("PGD-20", attacks.PGD(eps=eps, steps=20, seed=seed)),
        ("APGD-CE", attacks.APGD(eps=eps, seed=seed)),
        ("APGD-T", attacks.APGDT(eps=eps, seed=seed)),
        ("FAB-T", attacks.FAB(eps=eps, seed=seed)),
        ("Square", attacks.Square(eps=eps, seed=seed)),
    ):
        start = time.perf_counter()
        x_adv = np.concatenate(
            [
                np.asarray(attack(model, x[i : i + BATCH], y[i : i + BATCH]))
                for i in range(0, len(x), BATCH)
            ]
        )
        seconds = time.perf_counter() - start
        rows[name] = (accuracy(model, x_adv, y), seconds)
        print(f"{name}: {rows[name][0]:.3f} in {seconds:.1f} s", flush=True)
    report = attacks.AutoAttack(eps=eps, seed=seed).evaluate(
        model, x, y, batch_size=BATCH
    )
    rows["AutoAttack"] = (report.robust_accuracy, report.total_seconds)
    print(report.table())
    print(f"\n| attack (alone, L-inf eps {eps}) | accuracy | time |")
    print("|---|---|---|")
    for name, (acc, seconds) in rows.items():
        print(f"| {name} | {100 * acc:.1f} % | {seconds:.1f} s |")
    print(json.dumps({"robust_after": report.robust_after}))


if __name__ == "__main__":
    main()
