"""`keras-adv demo`: the MNIST recipe with monitoring and a final report."""

import os

from keras_adv.cli import _common

EPS = 0.3
STEPS = 7


def run(args):
    """Runs `keras-adv demo` with checked `args`."""
    keras_adv = _common.load_library()
    log_dir = os.path.join(args.out, "logs")
    train_samples = min(args.train_samples, 4000)
    test_samples = min(args.max_samples, 1000)
    warmup = args.epochs // 3
    print(
        f"Adversarial training (PGD-{STEPS}, eps {EPS}, eps warm-up over "
        f"{warmup} epoch(s)) of keras_adv.models.mnist_cnn on "
        f"{train_samples} MNIST images, {args.epochs} epoch(s); robustness "
        f"monitored on {min(args.monitor_samples, test_samples)} test "
        f"images; then evaluated on {test_samples} test images.",
        flush=True,
    )
    run = keras_adv.recipes.mnist_adversarial_training(
        method="pgd",
        epochs=args.epochs,
        batch_size=args.batch_size,
        eps=EPS,
        steps=STEPS,
        eps_warmup_epochs=warmup,
        train_samples=train_samples,
        eval_samples=test_samples,
        monitor=True,
        monitor_samples=args.monitor_samples,
        log_dir=log_dir,
        seed=args.seed,
        verbose=_common.progress_verbosity(args.quiet),
    )
    h = run.history.history
    print(
        f"Training took {run.train_seconds:.0f} s. Last epoch: adversarial "
        f"training accuracy {100 * h['adv_accuracy'][-1]:.1f}%, clean "
        f"validation accuracy {100 * h['val_accuracy'][-1]:.1f}%, monitor "
        f"robust accuracy {100 * h['val_robust_accuracy'][-1]:.1f}% "
        f"(eps {EPS}).",
        flush=True,
    )
    model_path = os.path.join(args.out, "model.keras")
    run.model.save(model_path)
    report = run.report
    print()
    print(report.table())
    print()
    for path in _common.write_outputs(report, args.out) + [model_path]:
        print(f"wrote {path}")
    print(
        f"\nReached: clean {100 * report.clean_accuracy:.1f}%, worst-case "
        f"robust accuracy {100 * report.worst_case(EPS):.1f}% at eps {EPS} "
        f"after {run.epochs} epoch(s) of PGD adversarial training."
    )
    print("\nView the training run in TensorBoard:")
    print(f"    tensorboard --logdir {log_dir}")
    return 0
