"""Robustness report of a small CNN, and a gradient-masked model caught.

Trains a small CNN (clean training) on the 4,000 training images of the
embedded MNIST subset, then `evaluate_robustness` sweeps FGSM, PGD-20 and
MIM over eps 0..0.3 on the test images: the table, `report.json` and the
accuracy-vs-eps plot. A clean-trained model is not robust: its worst-case
accuracy falls towards 0% by eps=0.2.

Then the same CNN behind a rounding input layer (a classic "defence" by
input quantisation) is evaluated: its gradients are zero, so gradient
attacks look harmless, and the gradient-masking checks say so instead of
reporting a falsely robust model.

    python examples/evaluate_robustness.py [--epochs 2] [--samples 500]
        [--out robustness_example]

Runs offline in about a minute on 2 CPU cores.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.attacks import FGSM  # noqa: E402
from keras_adv.attacks import MIM  # noqa: E402
from keras_adv.attacks import PGD  # noqa: E402
from keras_adv.models import small_cnn  # noqa: E402


class RoundInputs(keras.layers.Layer):
    """Quantises inputs to {0, 1}: a non-differentiable 'defence'."""

    def call(self, x):
        return keras.ops.round(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--out", default="robustness_example")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    model = small_cnn()
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=2)

    # Arrays or a tf.data.Dataset (batched or not) give the same report.
    test_ds = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(128)
    attacks = {
        "fgsm": FGSM(),
        "pgd": PGD(steps=20, seed=0),
        "mim": MIM(steps=20),
    }
    report = keras_adv.evaluation.evaluate_robustness(
        model,
        test_ds,
        attacks=attacks,
        epsilons=[0.0, 0.05, 0.1, 0.2, 0.3],
        max_samples=args.samples,
    )
    print(report.table())
    report.to_json(os.path.join(args.out, "report.json"))
    report.plot(os.path.join(args.out, "robustness.png"))
    print(f"wrote {args.out}/report.json and {args.out}/robustness.png\n")

    # The same weights behind a rounding layer: gradients vanish.
    masked = keras.Sequential([keras.Input((28, 28, 1)), RoundInputs()])
    for layer in model.layers:
        masked.add(layer)
    masked_report = keras_adv.evaluation.evaluate_robustness(
        masked,
        (x_test, y_test),
        epsilons=[0.0, 0.1, 0.3],
        max_samples=args.samples,
        verbose=0,
    )
    print("Same CNN behind a rounding input layer:")
    print(masked_report.table())


if __name__ == "__main__":
    main()
