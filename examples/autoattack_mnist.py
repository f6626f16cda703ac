"""AutoAttack next to PGD-20 on a CNN trained on the embedded MNIST subset.

Every robustness number names the attack that measured it; AutoAttack is
the number to quote (PGD-20 alone overstates robustness).

The script trains `keras_adv.models.mnist_cnn` with the library's recipe,
`keras_adv.recipes.robust_fit` (`--method pgd`: PGD-7 adversarial training
at `--eps` with an eps warm-up over the first third of the epochs; also
`clean`, `fgsm-rs`, `trades`), on the first `--train-samples` of the 4,000
training images. It then measures the first `--samples` test images at
`--eps` (L-inf) twice:

* PGD-20 with `keras_adv.evaluation.evaluate_robustness(attacks="pgd20")`
  (with its gradient-masking checks);
* AutoAttack standard with `keras_adv.attacks.AutoAttack(eps).evaluate`,
  which runs APGD-CE, APGD-T, FAB-T and Square one after the other, each
  on the samples every earlier attack left robust, and prints
  `report.table()`: the robust accuracy after each attack (cumulative) and
  its time, then AutoAttack's own sanity flags.

    python examples/autoattack_mnist.py [--method pgd] [--epochs 20]
        [--samples 200] [--eps 0.3]

How long it takes: with the defaults the training is the README recipe's
(PGD-7, batch 16, 20 epochs; the whole recipe, with its per-epoch monitor
and final evaluation, takes about 4 minutes on 2 CPU cores). The cost of
AutoAttack grows with the samples that stay robust: per such sample up to
100 gradient steps (APGD-CE), 9 x 100 (APGD-T), 9 x 100 gradient and
forward passes (FAB-T) and 5,000 forward queries (Square).

Measured on 2 CPU cores busy with other work: `--method clean --epochs 1
--train-samples 500 --samples 20` runs the whole script in 20 s (a
clean-trained model falls to APGD-CE at eps 0.3, so the three later
attacks have nothing left to attack); the same with `--eps 0.02 --samples
5` leaves 4 samples that survive every attack, and AutoAttack takes 21 s
(Square's 5,000 queries 8 s of it).
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras_adv  # noqa: E402
from keras_adv import recipes  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=recipes.METHODS, default="pgd")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--train-samples",
        type=int,
        default=4000,
        help="training images used (at most 4000)",
    )
    parser.add_argument(
        "--samples", type=int, default=200, help="test images attacked"
    )
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()
    if args.samples < 1 or args.train_samples < 1 or args.epochs < 1:
        parser.error("--samples, --train-samples and --epochs must be >= 1")

    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    x_train = x_train[: args.train_samples]
    y_train = y_train[: args.train_samples]
    x_test, y_test = x_test[: args.samples], y_test[: args.samples]

    print(f"=== {args.method} training, {args.epochs} epochs ===")
    run = recipes.robust_fit(
        keras_adv.models.mnist_cnn(seed=args.seed),
        (x_train, y_train),
        method=args.method,
        epochs=args.epochs,
        eps=args.eps,
        seed=args.seed,
        verbose=args.verbose,
    )
    print(f"trained in {run.train_seconds:.0f} s")
    if run.stopped_epoch is not None:
        print(
            "The overfitting guard stopped training after epoch "
            f"{run.stopped_epoch + 1} and restored the previous epoch."
        )
    model = run.model

    print(f"\n=== PGD-20 on {len(x_test)} test images, eps={args.eps} ===")
    pgd = keras_adv.evaluation.evaluate_robustness(
        model,
        (x_test, y_test),
        attacks="pgd20",
        epsilons=[0.0, args.eps],
        seed=args.seed,
        verbose=0,
    )
    print(pgd.table())

    print(f"\n=== AutoAttack on {len(x_test)} test images ===")
    autoattack = keras_adv.attacks.AutoAttack(eps=args.eps, seed=args.seed)
    report = autoattack.evaluate(model, x_test, y_test, verbose=1)
    print()
    print(report.table())
    for flag in report.flags:
        print(f"  ! {flag}")

    print(f"\nL-inf, eps={args.eps}, {len(x_test)} test images:")
    print(f"  clean accuracy        {100 * report.clean_accuracy:6.2f}%")
    print(
        f"  PGD-20                {100 * pgd.accuracy('pgd20', args.eps):6.2f}%"
    )
    print(
        f"  AutoAttack standard   {100 * report.robust_accuracy:6.2f}%"
        "   <- the number to quote"
    )


if __name__ == "__main__":
    main()
