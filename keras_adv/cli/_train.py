"""`keras-adv train`: a small CNN trained by the library recipe, saved."""

import argparse

from keras_adv.cli import _common
from keras_adv.cli import _shell
from keras_adv.models import small_cnn


def run(args: argparse.Namespace) -> int:
    """Runs `keras-adv train` with checked `args`."""
    keras_adv = _common.load_library()
    x, y = _common.load_data(args.data, "train", args.max_samples)
    _common.check_labels(y)
    model = small_cnn(
        input_shape=x.shape[1:], num_classes=int(y.max()) + 1, seed=args.seed
    )
    print(
        f"Training a small CNN ({args.method}, eps {args.eps:g}) on "
        f"{len(x)} samples of {args.data}, {args.epochs} epoch(s).",
        flush=True,
    )
    run = keras_adv.recipes.robust_fit(
        model,
        (x, y),
        method=args.method,
        epochs=args.epochs,
        batch_size=args.batch_size,
        eps=args.eps,
        steps=args.steps,
        seed=args.seed,
        monitor=False,
        verbose=0 if args.quiet else 2,
    )
    if run.stopped_epoch is not None:
        print(
            "The overfitting guard stopped training after epoch "
            f"{run.stopped_epoch + 1} (robust accuracy collapsed) and "
            "restored the previous epoch's weights."
        )
    run.model.save(args.out)
    print(f"wrote {args.out}")
    evaluate = _shell.command_line(
        "keras-adv", "evaluate", args.out, "--data", args.data
    )
    print(f"Evaluate it with:\n    {evaluate}")
    return 0
