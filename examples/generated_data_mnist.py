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
    python examples/generated_data_mnist.py --grid samples.png ...
                                  # also a PNG of the GAN's samples per class

With `--cache-dir` the classifier and the GAN are saved there (`.keras`)
and loaded by later runs with the same settings.

Every stage is a call of `keras_adv.recipes`: `generate_training_data`
(stages 1 to 3) and `mnist_generated_data_training` (stages 4 and 5);
this script adds the cache and Gowal's noise control.
"""

import argparse
import dataclasses
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adv.datasets import load_mnist_subset  # noqa: E402
from keras_adv.recipes import generate_training_data  # noqa: E402
from keras_adv.recipes import mnist_generated_data_training  # noqa: E402

EPS = 0.3

#: `--quick`: every stage tiny (a smoke run of the code, no figures).
QUICK = {
    "train_samples": 512,
    "classifier_epochs": 1,
    "gan_epochs": 1,
    "gan_width": 8,
    "num_generated": 512,
    "epochs": 1,
    "steps": 2,
    "eval_samples": 32,
    "fd_samples": 100,
}


def _load(cache_dir, name):
    """The model cached as `cache_dir/name`, or None."""
    path = None if cache_dir is None else os.path.join(cache_dir, name)
    if path is None or not os.path.exists(path):
        return None
    return keras.saving.load_model(path)


def _save(cache_dir, name, model):
    if cache_dir is not None:
        os.makedirs(cache_dir, exist_ok=True)
        model.save(os.path.join(cache_dir, name))


def noise_set(classifier, num_samples, seed=0):
    """Gowal's control: Gaussian noise images labelled by the classifier."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 0.5, size=(num_samples, 28, 28, 1))
    x = np.clip(x, 0.0, 1.0).astype("float32")
    logits = classifier.predict(x, batch_size=512, verbose=0)
    return x, np.argmax(logits, axis=1).astype("int64")


def save_class_grid(gan, path, per_class=10, num_classes=10):
    """A PNG of `per_class` samples of each class, one row per class."""
    labels = np.repeat(np.arange(num_classes), per_class)
    images = gan.generate(len(labels), labels=labels)
    h, w, c = images.shape[1:]
    grid = images.reshape(num_classes, per_class, h, w, c)
    grid = grid.transpose(0, 2, 1, 3, 4).reshape(num_classes * h, -1, c)
    keras.utils.save_img(path, grid, scale=True)
    return path


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
    add("--steps", type=int, default=7, help="PGD steps of TRADES")
    add("--classifier-epochs", type=int, default=10)
    add("--gan-epochs", type=int, default=100)
    add("--gan-width", type=int, default=32)
    add("--train-samples", type=int, default=None)
    add("--eval-samples", type=int, default=1000)
    add("--no-autoattack", action="store_true")
    add("--cache-dir", default=None)
    add("--grid", default=None, help="save a PNG of samples per class here")
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
    test = (x_test[: args.eval_samples], y_test[: args.eval_samples])
    row = {"settings": {k: v for k, v in vars(args).items() if k != "quick"}}

    generated = None
    if args.num_generated:
        names = (
            f"classifier_e{args.classifier_epochs}_s{args.seed}.keras",
            f"cgan_e{args.gan_epochs}_w{args.gan_width}_s{args.seed}.keras",
        )
        labeller, gan = (_load(args.cache_dir, name) for name in names)
        generated = generate_training_data(
            (x, y),
            1 if args.noise else args.num_generated,
            test_data=test,
            labeller=labeller,
            gan=gan,
            confidence=args.confidence,
            labeller_epochs=args.classifier_epochs,
            gan_epochs=args.gan_epochs,
            gan_width=args.gan_width,
            figure_samples=args.fd_samples,
            seed=args.seed,
            verbose=0,
        )
        if args.grid and not args.noise:
            save_class_grid(generated.gan, args.grid)
        for name, model, cached in zip(
            names, (generated.labeller, generated.gan), (labeller, gan)
        ):
            if cached is None:
                _save(args.cache_dir, name, model)
        row["labeller_test_accuracy"] = round(
            generated.figures.pop("labeller_test_accuracy"), 4
        )
        if args.noise:
            start = time.perf_counter()
            x_noise, y_noise = noise_set(
                generated.labeller, args.num_generated, args.seed
            )
            seconds = dict(generated.seconds)
            seconds["generation"] = round(time.perf_counter() - start, 1)
            generated = dataclasses.replace(
                generated, x=x_noise, y=y_noise, seconds=seconds
            )
        else:
            row["generator"] = {
                k: [round(f, 4) for f in v]
                if isinstance(v, list)
                else round(v, 4)
                for k, v in generated.figures.items()
            }

    start = time.perf_counter()
    run = mnist_generated_data_training(
        num_generated=args.num_generated,
        real_fraction=args.real_fraction,
        ema_momentum=None if args.no_ema else args.ema_momentum,
        epochs=args.epochs,
        batch_size=args.batch_size,
        eps=EPS,
        steps=args.steps,
        generated=generated,
        train_samples=args.train_samples,
        eval_samples=args.eval_samples,
        autoattack=not args.no_autoattack,
        seed=args.seed,
        verbose=args.verbose,
    )
    seconds = {} if generated is None else dict(generated.seconds)
    seconds["training"] = round(run.train_seconds, 1)
    seconds["evaluation"] = round(
        time.perf_counter() - start - run.train_seconds, 1
    )
    report = run.report
    figures = {"clean": report.clean_accuracy}
    figures.update(
        {name: report.accuracy(name, EPS) for name in report.attacks}
    )
    row["test"] = {k: round(float(v), 4) for k, v in figures.items()}
    row["seconds"] = seconds
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
