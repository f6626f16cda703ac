"""Fast adversarial training: N-FGSM, FGSM-RS with a guard, GradAlign, Free-m.

Trains the same small CNN (`keras_adv.models.small_cnn`) four ways on
the embedded MNIST subset, each with a single attack step per batch,
through one `keras_adv.callbacks.AdversarialTraining` callback with an eps
warm-up over the first third of the epochs (none below 3 epochs):

* `n_fgsm` (`keras_adv.training.NFGSM`): noise uniform in the ball of
  radius 2 eps, one step of eps, no projection back onto the eps ball
  (de Jorge et al. 2022, arXiv:2202.01181);
* `fgsm_rs` (`keras_adv.training.FGSMRS`): FGSM from a uniform random
  start with a step of 1.25 eps, projected (Wong et al. 2020,
  arXiv:2001.03994), watched by `keras_adv.callbacks.OverfittingGuard`:
  after every epoch it measures PGD-10 accuracy on 500 training images
  and, if that falls by more than 0.2, stops training and restores the
  previous epoch's weights (catastrophic overfitting);
* `grad_align` (`keras_adv.training.GradAlign`): FGSM (step eps, no random
  start) plus the GradAlign regulariser, which needs double
  backpropagation (Andriushchenko and Flammarion 2020, arXiv:2007.02617);
* `free` (`keras_adv.training.Free`): every minibatch replayed
  `--free-replays` times, each pass's input gradient moving the carried
  perturbation (Shafahi et al. 2019, arXiv:1904.12843); it trains for
  `--epochs / --free-replays` epochs, the same number of passes as the
  others' `--epochs` (compare like with like).

Then it prints, for each, the clean and PGD-20 accuracy at `--eps`
(L-inf) on the first `--eval-samples` test images
(`keras_adv.evaluation.evaluate_robustness`), the epochs trained and the
training time. These are PGD-20 numbers: for a number to quote, run
AutoAttack (`examples/autoattack_mnist.py`); `bench/fast_training.py`
does that for every objective on the quality recipe (AutoAttack figures
in `docs/adversarial_training.md`: at eps 0.3 Free-4 reaches 65.8 %,
N-FGSM 19.5 %, PGD-7 80.1 %; at eps 0.2 N-FGSM 84.0 %, PGD-7 83.8 %).

    python examples/fast_adversarial_training.py [--epochs 5] [--eps 0.3]
        [--only n_fgsm] [--train-samples 4000] [--eval-samples 500]

Measured on 2 CPU cores busy with other work: `--epochs 1
--train-samples 256 --eval-samples 64` runs all four in 12 s (mostly
TensorFlow start-up and graph tracing). The defaults train 5 epochs on
4,000 images per method. Per batch, N-FGSM and FGSM-RS spend one
forward-backward pass on the attack and one on training; a GradAlign step
costs about 3x an FGSM-training step (double backpropagation, as its
docstring says); the guard adds a PGD-10 on 500 images per epoch.
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

import keras_adv  # noqa: E402

METHODS = ("n_fgsm", "fgsm_rs", "grad_align", "free")
GUARD_SAMPLES = 500


def train(method, data, args):
    """Trains a fresh CNN with `method`.

    Returns `(model, history, guard, seconds)`: `guard` is the
    `OverfittingGuard` (FGSM-RS only, else None), `seconds` the time in
    `fit`.
    """
    x_train, y_train = data
    keras.utils.set_random_seed(args.seed)
    model = keras_adv.models.small_cnn(seed=args.seed)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # The attack supplies the threat model (eps, norm, value range, loss).
    attack = keras_adv.attacks.PGD(eps=args.eps, seed=args.seed)
    if method == "n_fgsm":
        objective = keras_adv.training.NFGSM(attack)
    elif method == "fgsm_rs":
        objective = keras_adv.training.FGSMRS(attack, step_factor=1.25)
    elif method == "grad_align":
        objective = keras_adv.training.GradAlign(
            attack, grad_align_lambda=args.grad_align_lambda
        )
    else:
        objective = keras_adv.training.Free(attack, replays=args.free_replays)
    epochs = args.epochs
    if method == "free":
        epochs = max(1, args.epochs // args.free_replays)
    callbacks = [
        keras_adv.callbacks.AdversarialTraining(
            objective=objective, eps_warmup_epochs=epochs // 3
        )
    ]
    guard = None
    if method == "fgsm_rs":
        guard = keras_adv.callbacks.OverfittingGuard(
            (x_train[:GUARD_SAMPLES], y_train[:GUARD_SAMPLES]),
            keras_adv.attacks.PGD(eps=args.eps, steps=10, seed=args.seed),
            drop=0.2,
            restore_best_weights=True,
        )
        callbacks.append(guard)
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=args.batch_size,
        callbacks=callbacks,
        verbose=args.verbose,
    )
    return model, history, guard, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--only", choices=METHODS, action="append")
    parser.add_argument("--train-samples", type=int, default=4000)
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--grad-align-lambda",
        type=float,
        default=0.2,
        help="weight of the GradAlign regulariser (the paper tunes it per "
        "eps; 0.2 is the library default)",
    )
    parser.add_argument(
        "--free-replays",
        type=int,
        default=4,
        help="replays per minibatch of Free-m (it trains for "
        "epochs / replays epochs)",
    )
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
    data = (x_train[: args.train_samples], y_train[: args.train_samples])
    test = (x_test[: args.eval_samples], y_test[: args.eval_samples])

    rows = []
    for method in args.only or METHODS:
        print(f"\n=== {method}, {args.epochs} epochs, eps={args.eps} ===")
        model, history, guard, seconds = train(method, data, args)
        if guard is not None and guard.stopped_epoch is not None:
            print(
                "The guard detected catastrophic overfitting after epoch "
                f"{guard.stopped_epoch + 1} (PGD-10 accuracy on the guard "
                "batch fell by more than 0.2) and restored the previous "
                "epoch's weights."
            )
        report = keras_adv.evaluation.evaluate_robustness(
            model,
            test,
            attacks="pgd20",
            epsilons=[0.0, args.eps],
            seed=args.seed,
            verbose=0,
        )
        for warning in report.warnings:
            print(f"  ! {warning}")
        rows.append(
            (
                method,
                report.clean_accuracy,
                report.accuracy("pgd20", args.eps),
                len(history.epoch),
                seconds,
            )
        )

    print(
        f"\n{len(test[0])} test images, L-inf eps={args.eps}; PGD-20 "
        "accuracy (AutoAttack is the number to quote)"
    )
    print(
        f"{'objective':<12}{'clean':>8}{'PGD-20':>8}{'epochs':>8}"
        f"{'train time':>12}"
    )
    for method, clean, robust, epochs, seconds in rows:
        print(
            f"{method:<12}{clean:>8.3f}{robust:>8.3f}{epochs:>8}"
            f"{seconds:>11.0f}s"
        )


if __name__ == "__main__":
    main()
