"""`RandomLpNoise` inside a model: training-time noise in an Lp ball.

`keras_adv.layers.RandomLpNoise(eps)` adds noise inside the L-inf (or L2)
ball of radius `eps` when the model is called with `training=True` (so in
`fit`) and is the identity at inference, like `keras.layers.GaussianNoise`.
The script trains the same small CNN on the embedded MNIST subset twice,
without and with the layer as its first layer, then prints for both, on
the first `--eval-samples` test images:

* the clean accuracy;
* the accuracy on the test images plus random noise of the same radius
  (a `RandomLpNoise` layer called with `training=True`);
* the PGD-20 accuracy at the same radius (`evaluate_robustness`): random
  noise is the cheapest robustness baseline, not adversarial training, and
  this column shows the difference.

It also checks that the layer is the identity at inference (the noisy
model's predictions repeat exactly) and that the model saves to `.keras`
and loads with `safe_mode=True` after `import keras_adv`, giving the same
predictions.

    python examples/random_noise_layer.py [--epochs 3] [--eps 0.3]
        [--norm linf] [--distribution uniform] [--eval-samples 500]

Measured on 2 CPU cores busy with other work: `--epochs 1
--train-samples 512 --eval-samples 128` takes 13 s; the defaults train 3
epochs on 4,000 images per model.
"""

import argparse
import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_adv  # noqa: E402


def cnn(noise=None, seed=0):
    """A small CNN (logits), with `noise` as its first layer if given."""
    init = keras.initializers.GlorotUniform(seed=seed)
    layers = [keras.Input((28, 28, 1))]
    if noise is not None:
        layers.append(noise)
    layers += [
        keras.layers.Conv2D(16, 3, activation="relu", kernel_initializer=init),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu", kernel_initializer=init),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu", kernel_initializer=init),
        keras.layers.Dense(10, kernel_initializer=init),
    ]
    return keras.Sequential(layers)


def accuracy(model, x, y):
    predictions = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(predictions.argmax(axis=1) == y))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--norm", choices=("linf", "l2"), default="linf")
    parser.add_argument(
        "--distribution", choices=("uniform", "gaussian"), default="uniform"
    )
    parser.add_argument("--train-samples", type=int, default=4000)
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()
    if min(args.epochs, args.train_samples, args.eval_samples) < 1:
        parser.error(
            "--epochs, --train-samples and --eval-samples must be >= 1"
        )

    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    x_train = x_train[: args.train_samples]
    y_train = y_train[: args.train_samples]
    x_test, y_test = x_test[: args.eval_samples], y_test[: args.eval_samples]

    # The test-time noise: the same layer, called with training=True.
    test_noise = keras_adv.layers.RandomLpNoise(
        args.eps,
        norm=args.norm,
        distribution=args.distribution,
        value_range=(0.0, 1.0),
        seed=args.seed + 1,
    )
    x_noisy = np.asarray(test_noise(x_test, training=True))

    rows = []
    for name in ("plain", "noise"):
        noise = None
        if name == "noise":
            noise = keras_adv.layers.RandomLpNoise(
                args.eps,
                norm=args.norm,
                distribution=args.distribution,
                value_range=(0.0, 1.0),
                seed=args.seed,
            )
        keras.utils.set_random_seed(args.seed)
        model = cnn(noise, seed=args.seed)
        model.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        print(f"\n=== {name} model, {args.epochs} epochs ===")
        model.fit(
            x_train,
            y_train,
            epochs=args.epochs,
            batch_size=32,
            verbose=args.verbose,
        )
        report = keras_adv.evaluation.evaluate_robustness(
            model,
            (x_test, y_test),
            attacks=keras_adv.attacks.PGD(norm=args.norm, steps=20, seed=0),
            epsilons=[0.0, args.eps],
            checks=False,
            seed=args.seed,
            verbose=0,
        )
        rows.append(
            (
                name,
                report.clean_accuracy,
                accuracy(model, x_noisy, y_test),
                report.accuracy("pgd", args.eps),
            )
        )

    # Inference is deterministic: the layer is the identity there.
    first = model.predict(x_test, verbose=0)
    if not np.array_equal(first, model.predict(x_test, verbose=0)):
        raise RuntimeError("inference with RandomLpNoise is not repeatable")
    # The layer is registered: the model round-trips through .keras.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "noisy.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
    if not np.allclose(loaded.predict(x_test, verbose=0), first, atol=1e-6):
        raise RuntimeError("the reloaded model predicts differently")
    print(
        "\nThe noise model predicts deterministically and reloads from "
        f".keras with the same predictions ({type(loaded.layers[0]).__name__}"
        f", eps={loaded.layers[0].eps})."
    )

    print(
        f"\n{len(x_test)} test images, {args.norm} eps={args.eps}, "
        f"{args.distribution} noise"
    )
    print(f"{'model':<8}{'clean':>8}{'noise':>8}{'PGD-20':>8}")
    for name, clean, noisy, pgd in rows:
        print(f"{name:<8}{clean:>8.3f}{noisy:>8.3f}{pgd:>8.3f}")


if __name__ == "__main__":
    main()
