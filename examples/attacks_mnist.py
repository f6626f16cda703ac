"""Attack a small CNN trained on the embedded MNIST subset.

Trains a CNN for a few epochs on the 4,000 training images (clean training),
then prints its accuracy on the 1,000 test images under FGSM, BIM, MIM and
PGD (L-inf) at several eps, L2 PGD, and the success rate of a targeted PGD.
A clean-trained model is not robust: its PGD accuracy at eps=0.3 is near 0%.

    python examples/attacks_mnist.py [--epochs 3]
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.models import small_cnn  # noqa: E402


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), 1) == y))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    x_test, y_test = x_test[: args.samples], y_test[: args.samples]
    model = small_cnn()
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=2)
    print(f"clean test accuracy: {accuracy(model, x_test, y_test):.3f}")

    attacks = {
        "FGSM": keras_adv.attacks.FGSM(),
        "BIM-10": keras_adv.attacks.BIM(steps=10),
        "MIM-10": keras_adv.attacks.MIM(steps=10),
        "PGD-20": keras_adv.attacks.PGD(steps=20, seed=0),
    }
    print("\naccuracy under L-inf attacks (1,000 test images)")
    print("attack    " + "".join(f"eps={e:<6}" for e in (0.1, 0.2, 0.3)))
    for name, attack in attacks.items():
        row = []
        start = time.perf_counter()
        for eps in (0.1, 0.2, 0.3):
            x_adv = attack(model, x_test, y_test, eps=eps)
            row.append(accuracy(model, np.asarray(x_adv), y_test))
        cells = "".join(f"{a:<10.3f}" for a in row)
        print(f"{name:<10}{cells}({time.perf_counter() - start:.1f}s)")

    l2 = keras_adv.attacks.PGD(eps=2.0, norm="l2", steps=20, seed=0)
    x_l2 = np.asarray(l2(model, x_test, y_test))
    print(f"\nL2 PGD-20 eps=2.0 accuracy: {accuracy(model, x_l2, y_test):.3f}")

    targets = (y_test + 1) % 10
    targeted = keras_adv.attacks.PGD(eps=0.3, steps=20, targeted=True, seed=0)
    x_t = np.asarray(targeted(model, x_test, targets))
    hit = np.mean(np.argmax(model.predict(x_t, verbose=0), 1) == targets)
    print(f"targeted PGD-20 eps=0.3 (target y+1) success rate: {hit:.3f}")


if __name__ == "__main__":
    main()
