"""Softmax GAN on the embedded MNIST subset, judged by a CNN (CPU, offline).

Trains a small CNN on the 4,000-image subset (the judge), then a DCGAN-style
SoftmaxGAN without batch normalisation, watched by `GANMonitor`; prints the
judge's test accuracy and, for 1,000 generated digits, the Fréchet distance
in the judge's feature space and the class coverage.

    python examples/softmax_gan_mnist.py                 # SoftmaxGAN
    python examples/softmax_gan_mnist.py --compare       # + standard loss,
                                                         #   with/without BN
    python examples/softmax_gan_mnist.py --epochs 5 --log-dir logs/gan

TensorBoard grids and figures go to `--log-dir` if given.
"""

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.callbacks import GANMonitor  # noqa: E402
from keras_adv.models import GAN  # noqa: E402
from keras_adv.models import SoftmaxGAN  # noqa: E402
from keras_adv.models import dcgan_discriminator  # noqa: E402
from keras_adv.models import dcgan_generator  # noqa: E402

LATENT_DIM = 64


def judge_cnn(seed=0):
    """A VGG-style CNN for 28x28x1 digits (logits); ~98% on the subset."""
    init = keras.initializers.HeNormal(seed=seed)

    def conv(filters):
        return keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            activation="relu",
            kernel_initializer=init,
        )

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            conv(32),
            conv(32),
            keras.layers.MaxPooling2D(),
            conv(64),
            conv(64),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.4, seed=seed),
            keras.layers.Dense(128, activation="relu", kernel_initializer=init),
            keras.layers.Dropout(0.4, seed=seed),
            keras.layers.Dense(10, name="logits"),
        ],
        name="judge",
    )


def train_classifier(x, y, x_test, y_test, epochs=10, seed=0):
    """The judge: a CNN trained on the subset; returns `(model, accuracy)`."""
    keras.utils.set_random_seed(seed)
    model = judge_cnn(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    return model, float(accuracy["accuracy"])


def build_gan(
    loss="softmax",
    batch_norm=False,
    width=32,
    dropout=0.3,
    d_learning_rate=2e-4,
    g_learning_rate=5e-4,
    seed=0,
):
    """A DCGAN-style GAN for 28x28x1 digits with the given loss."""
    generator = dcgan_generator(
        LATENT_DIM, width=width, batch_norm=batch_norm, seed=seed
    )
    discriminator = dcgan_discriminator(
        width=width, batch_norm=batch_norm, dropout=dropout, seed=seed + 100
    )
    cls = SoftmaxGAN if loss == "softmax" else GAN
    gan = cls(generator, discriminator, LATENT_DIM, seed=seed)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(d_learning_rate, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(g_learning_rate, beta_1=0.5),
        loss=None if loss == "softmax" else loss,
    )
    return gan


def train_gan(
    x,
    classifier,
    x_test,
    loss="softmax",
    batch_norm=False,
    epochs=40,
    batch_size=32,
    freq=10,
    log_dir=None,
    seed=0,
    verbose=0,
    **gan_kwargs,
):
    """Trains one GAN; returns `(gan, history dict, final figures)`.

    `gan_kwargs` go to `build_gan` (width, dropout, learning rates).
    """
    keras.utils.set_random_seed(seed)
    gan = build_gan(loss, batch_norm, seed=seed, **gan_kwargs)
    monitor = GANMonitor(
        classifier=classifier,
        real_data=x_test,
        freq=freq,
        num_samples=1000,
        log_dir=log_dir,
        seed=seed,
    )
    history = gan.fit(
        x,
        batch_size=batch_size,
        epochs=epochs,
        callbacks=[monitor],
        verbose=verbose,
    )
    _, figures = monitor.evaluate()
    return gan, history.history, figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--classifier-epochs", type=int, default=10)
    parser.add_argument(
        "--loss",
        default="softmax",
        choices=["softmax", "non_saturating", "least_squares", "hinge"],
    )
    parser.add_argument("--batch-norm", action="store_true")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also train the standard GAN loss, each with and without BN",
    )
    parser.add_argument("--log-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    (x, y), (x_test, y_test) = keras_adv.datasets.load_mnist_subset()
    start = time.time()
    classifier, accuracy = train_classifier(
        x, y, x_test, y_test, epochs=args.classifier_epochs, seed=args.seed
    )
    print(
        f"judge CNN test accuracy: {accuracy:.4f} ({time.time() - start:.0f}s)"
    )

    runs = [(args.loss, args.batch_norm)]
    if args.compare:
        runs = [
            (loss, bn)
            for loss in ("softmax", "non_saturating")
            for bn in (False, True)
        ]
    results = []
    for loss, batch_norm in runs:
        start = time.time()
        log_dir = None
        if args.log_dir:
            tag = f"{loss}_{'bn' if batch_norm else 'nobn'}"
            log_dir = os.path.join(args.log_dir, tag)
        _, _, figures = train_gan(
            x,
            classifier,
            x_test,
            loss=loss,
            batch_norm=batch_norm,
            epochs=args.epochs,
            log_dir=log_dir,
            seed=args.seed,
            verbose=2 if not args.compare else 0,
        )
        figures = {k: round(v, 4) for k, v in figures.items()}
        row = {"loss": loss, "batch_norm": batch_norm, **figures}
        row["seconds"] = round(time.time() - start, 1)
        results.append(row)
        print(json.dumps(row))
    return results


if __name__ == "__main__":
    main()
