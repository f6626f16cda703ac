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
    generated = None
    if args.generated:
        print(
            f"Generating {args.generated} images: a clean classifier and a "
            f"class-conditional GAN ({args.gan_epochs} epochs) trained on "
            f"{len(x)} samples of {args.data}.",
            flush=True,
        )
        generated = keras_adv.recipes.generate_training_data(
            (x, y),
            args.generated,
            gan_epochs=args.gan_epochs,
            seed=args.seed,
        )
        figures = generated.figures
        print(
            "Generator: Frechet distance "
            f"{figures['frechet_distance']:.2f} (classifier features, to "
            f"the training images), class coverage {figures['coverage']:.2f},"
            " classifier agrees with the requested class on "
            f"{figures['label_agreement']:.1%} of samples; "
            f"{sum(generated.seconds.values()):.0f} s.",
            flush=True,
        )
    share = (
        f", {args.real_fraction:.0%} real images per batch"
        if generated is not None
        else ""
    )
    ema = f", weight averaging {args.ema:g}" if args.ema is not None else ""
    print(
        f"Training a small CNN ({args.method}, eps {args.eps:g}) on "
        f"{len(x)} samples of {args.data}{share}{ema}, {args.epochs} "
        "epoch(s).",
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
        generated=None if generated is None else generated.data,
        real_fraction=args.real_fraction,
        ema_momentum=args.ema,
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
