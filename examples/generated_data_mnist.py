"""Robust training on generated data (Gowal et al. 2021), MNIST subset.

The whole pipeline on the 4,000 real training images of the embedded
subset (offline), judged on the 1,000 test images:

1. a non-robust classifier (`keras_adv.models.mnist_cnn`, clean training):
   the pseudo-labeller; its test accuracy is printed;
2. a class-conditional GAN (`ConditionalGAN`: a conditional DCGAN
   generator and a projection discriminator, hinge loss) on the same real
   images only; the Frechet distance and class coverage of 1,000 samples
   in the classifier's feature space, and how often the classifier agrees
   with the class the generator was asked for;
3. a fixed set of `--num-generated` generated images labelled by the
   classifier (`make_pseudo_labelled`, optional `--confidence` filter), or
   Gaussian noise labelled the same way (`--noise`, Gowal's control);
4. TRADES (beta 6, PGD-7 with steps of eps/3 at eps 0.3, eps warm-up over
   the first third of the epochs; the quality recipe's settings) on the
   recipe's CNN, with batches of exactly `round(real_fraction *
   batch_size)` real images (`mix_datasets`) and weight averaging
   (`use_ema=True` in Adam; the averaged weights are the ones evaluated);
5. clean, PGD-20 and AutoAttack (standard) accuracy at eps 0.3.

It prints one JSON line with the figures and the time of every stage.

    python examples/generated_data_mnist.py                  # the pipeline
    python examples/generated_data_mnist.py --quick          # smoke run
    python examples/generated_data_mnist.py --num-generated 0 --no-ema
                                              # the TRADES recipe alone
    python examples/generated_data_mnist.py --cache-dir runs/cache ...
                                              # reuse classifier and GAN

With `--cache-dir` the classifier and the GAN are saved there (`.keras`)
and loaded by later runs with the same settings.
"""

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adv import training  # noqa: E402
from keras_adv.attacks import PGD  # noqa: E402
from keras_adv.attacks import AutoAttack  # noqa: E402
from keras_adv.callbacks import AdversarialTraining  # noqa: E402
from keras_adv.datasets import load_mnist_subset  # noqa: E402
from keras_adv.datasets import make_pseudo_labelled  # noqa: E402
from keras_adv.datasets import mix_datasets  # noqa: E402
from keras_adv.evaluation import evaluate_robustness  # noqa: E402
from keras_adv.metrics import ClassifierFrechetDistance  # noqa: E402
from keras_adv.models import ConditionalGAN  # noqa: E402
from keras_adv.models import conditional_dcgan_generator  # noqa: E402
from keras_adv.models import mnist_cnn  # noqa: E402
from keras_adv.models import projection_discriminator  # noqa: E402

EPS = 0.3
LATENT_DIM = 64
NUM_CLASSES = 10

#: `--quick`: every stage tiny (a smoke run of the code, no figures).
QUICK = {
    "train_samples": 512,
    "classifier_epochs": 1,
    "gan_epochs": 1,
    "gan_width": 8,
    "num_generated": 512,
    "epochs": 1,
    "steps_per_epoch": 4,
    "steps": 2,
    "eval_samples": 32,
    "fd_samples": 100,
}


def _cached(cache_dir, name, build):
    """`build()`'s model, saved to / loaded from `cache_dir/name.keras`."""
    path = None if cache_dir is None else os.path.join(cache_dir, name)
    if path is not None and os.path.exists(path):
        return keras.saving.load_model(path), 0.0
    start = time.perf_counter()
    model = build()
    seconds = time.perf_counter() - start
    if path is not None:
        os.makedirs(cache_dir, exist_ok=True)
        model.save(path)
    return model, seconds


def train_classifier(x, y, epochs=10, seed=0):
    """The non-robust pseudo-labeller: `mnist_cnn` trained clean."""
    keras.utils.set_random_seed(seed)
    model = mnist_cnn(seed=seed)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    return model


def train_gan(x, y, epochs=40, width=32, batch_size=64, seed=0):
    """A class-conditional GAN trained on the real images only."""
    keras.utils.set_random_seed(seed)
    gan = ConditionalGAN(
        conditional_dcgan_generator(
            LATENT_DIM, NUM_CLASSES, width=width, seed=seed
        ),
        projection_discriminator(
            num_classes=NUM_CLASSES, width=width, seed=seed
        ),
        latent_dim=LATENT_DIM,
        num_classes=NUM_CLASSES,
        seed=seed,
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        loss="hinge",
    )
    gan.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return gan


def generator_figures(gan, classifier, x_test, num_samples=1000):
    """Frechet distance, class coverage and label agreement of samples."""
    labels = np.arange(num_samples) % NUM_CLASSES
    samples = gan.generate(num_samples, labels=labels)
    judge = ClassifierFrechetDistance(classifier, x_test)
    figures = judge.evaluate(samples)
    predicted = np.argmax(classifier.predict(samples, verbose=0), axis=1)
    figures["label_agreement"] = float(np.mean(predicted == labels))
    fractions = figures.pop("class_fractions")
    figures = {k: round(float(v), 4) for k, v in figures.items()}
    figures["class_fractions"] = [round(float(v), 4) for v in fractions]
    return figures


def noise_set(classifier, num_samples, seed=0):
    """Gowal's control: Gaussian noise images labelled by the classifier."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 0.5, size=(num_samples, 28, 28, 1))
    x = np.clip(x, 0.0, 1.0).astype("float32")
    logits = classifier.predict(x, batch_size=512, verbose=0)
    return x, np.argmax(logits, axis=1).astype("int64")


def robust_training(
    real,
    generated,
    real_fraction=0.3,
    batch_size=16,
    epochs=20,
    steps_per_epoch=None,
    steps=7,
    ema_momentum=0.999,
    seed=0,
    verbose=2,
):
    """TRADES on real + generated batches; weight averaging if asked.

    `generated=None` trains on the real arrays alone, as the TRADES recipe
    does (`steps_per_epoch` and `real_fraction` are then unused);
    `ema_momentum=None` switches weight averaging off.
    """
    keras.utils.set_random_seed(seed)
    model = mnist_cnn(seed=seed)
    model.compile(
        keras.optimizers.Adam(
            1e-3,
            use_ema=ema_momentum is not None,
            ema_momentum=ema_momentum or 0.99,
        ),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    attack = PGD(eps=EPS, steps=steps, step_size=EPS / 3.0, seed=seed)
    objective = training.get("trades", attack, beta=6.0)
    callback = AdversarialTraining(
        objective=objective, eps_warmup_epochs=epochs // 3
    )
    start = time.perf_counter()
    if generated is None:
        # The TRADES recipe's data: the real arrays, shuffled by Keras.
        x, y = real
        model.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            callbacks=[callback],
            verbose=verbose,
        )
    else:
        data = mix_datasets(
            real,
            generated,
            real_fraction=real_fraction,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            seed=seed,
        )
        model.fit(
            data,
            epochs=epochs,
            callbacks=[callback],
            verbose=verbose,
            shuffle=False,  # mixed batches are shuffled already
        )
    return model, time.perf_counter() - start


def evaluate(model, x_test, y_test, autoattack=True, seed=0):
    """Clean, PGD-20 and AutoAttack (standard) accuracy at eps 0.3."""
    report = evaluate_robustness(
        model,
        (x_test, y_test),
        attacks={"pgd20": PGD(steps=20, seed=seed)},
        epsilons=(0.0, EPS),
        seed=seed,
        verbose=0,
    )
    figures = {
        "clean": report.clean_accuracy,
        "pgd20": report.accuracy("pgd20", EPS),
    }
    if autoattack:
        aa = AutoAttack(eps=EPS, seed=seed).evaluate(
            model, x_test, y_test, verbose=0
        )
        figures["autoattack"] = aa.robust_accuracy
    return {k: round(float(v), 4) for k, v in figures.items()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--real-fraction", type=float, default=0.3)
    add("--num-generated", type=int, default=50_000)
    add("--confidence", type=float, default=None)
    add("--noise", action="store_true", help="Gaussian noise, not a GAN")
    add("--ema-momentum", type=float, default=0.999)
    add("--no-ema", action="store_true")
    add("--epochs", type=int, default=20)
    add("--batch-size", type=int, default=16)
    add("--steps-per-epoch", type=int, default=None)
    add("--steps", type=int, default=7, help="PGD steps of TRADES")
    add("--classifier-epochs", type=int, default=10)
    add("--gan-epochs", type=int, default=40)
    add("--gan-width", type=int, default=32)
    add("--train-samples", type=int, default=None)
    add("--eval-samples", type=int, default=1000)
    add("--no-autoattack", action="store_true")
    add("--cache-dir", default=None)
    add("--seed", type=int, default=0)
    add("--verbose", type=int, default=2)
    add("--quick", action="store_true", help="tiny settings: a smoke run")
    parser.set_defaults(fd_samples=1000)
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


def main(argv=None):
    args = parse_args(argv)
    # tf.data draws depend on the global seed too: the same generated set
    # whether the GAN is trained in this run or loaded from the cache.
    keras.utils.set_random_seed(args.seed)
    (x, y), (x_test, y_test) = load_mnist_subset()
    x, y = x[: args.train_samples], y[: args.train_samples]
    x_test, y_test = x_test[: args.eval_samples], y_test[: args.eval_samples]
    row = {"settings": {k: v for k, v in vars(args).items() if k != "quick"}}
    seconds = {}

    classifier, seconds["classifier"] = _cached(
        args.cache_dir,
        f"classifier_e{args.classifier_epochs}_s{args.seed}.keras",
        lambda: train_classifier(x, y, args.classifier_epochs, args.seed),
    )
    labeller = classifier.evaluate(x_test, y_test, verbose=0, return_dict=True)
    row["labeller_test_accuracy"] = round(float(labeller["accuracy"]), 4)

    generated = None
    if args.num_generated and args.noise:
        generated = noise_set(classifier, args.num_generated, args.seed)
    elif args.num_generated:
        gan, seconds["gan"] = _cached(
            args.cache_dir,
            f"cgan_e{args.gan_epochs}_w{args.gan_width}_s{args.seed}.keras",
            lambda: train_gan(
                x, y, args.gan_epochs, args.gan_width, seed=args.seed
            ),
        )
        row["generator"] = generator_figures(
            gan, classifier, x_test, args.fd_samples
        )
        start = time.perf_counter()
        generated = make_pseudo_labelled(
            gan,
            classifier,
            args.num_generated,
            confidence=args.confidence,
            seed=args.seed,
        )
        seconds["generation"] = time.perf_counter() - start

    model, seconds["training"] = robust_training(
        (x, y),
        generated,
        real_fraction=args.real_fraction,
        batch_size=args.batch_size,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        steps=args.steps,
        ema_momentum=None if args.no_ema else args.ema_momentum,
        seed=args.seed,
        verbose=args.verbose,
    )
    start = time.perf_counter()
    row["test"] = evaluate(
        model, x_test, y_test, not args.no_autoattack, args.seed
    )
    seconds["evaluation"] = time.perf_counter() - start
    row["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
