"""`keras-adv demo`: the MNIST recipe with monitoring and a final report."""

import argparse
import os
import textwrap
from typing import TYPE_CHECKING

from keras_adv.cli import _common
from keras_adv.cli import _shell
from keras_adv.evaluation._attack_set import attack_label

if TYPE_CHECKING:
    from keras_adv.evaluation import RobustnessReport
    from keras_adv.recipes import TrainingRun

EPS = 0.3
STEPS = 7
# The test images of the embedded subset: the README's AutoAttack figure.
AUTOATTACK_SAMPLES = 1000


def run(args: argparse.Namespace) -> int:
    """Runs `keras-adv demo` with checked `args`."""
    keras_adv = _common.load_library()
    log_dir = os.path.join(args.out, "logs")
    train_samples = min(args.train_samples, 4000)
    test_samples = min(args.max_samples, 1000)
    warmup = args.epochs // 3
    _say(
        f"Adversarial training (PGD-{STEPS}, eps {EPS}, eps warm-up over "
        f"{warmup} epoch(s)) of keras_adv.models.mnist_cnn on "
        f"{train_samples} MNIST images, {args.epochs} epoch(s); robustness "
        f"monitored on {min(args.monitor_samples, test_samples)} test "
        f"images; then evaluated on {test_samples} test images."
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
    _say(
        f"Training took {run.train_seconds:.0f} s. Last epoch: accuracy "
        f"{100 * h['adv_accuracy'][-1]:.1f}% on the adversarial training "
        f"batches, {100 * h['val_accuracy'][-1]:.1f}% on clean test "
        f"images; the monitor's worst case at eps {EPS} (FGSM and PGD-10, "
        f"{min(args.monitor_samples, test_samples)} test images): "
        f"{100 * h['val_robust_accuracy'][-1]:.1f}%."
    )
    model_path = os.path.join(args.out, "model.keras")
    run.model.save(model_path)
    report = run.report
    print()
    print(report.table())
    print()
    for path in _common.write_outputs(report, args.out) + [model_path]:
        print(f"wrote {path}")
    print()
    _say(_summary(run, report))
    print()
    print(_next_steps(args.out, model_path, log_dir, test_samples))
    return 0


def _say(text: str) -> None:
    """Prints prose wrapped for a terminal."""
    print(textwrap.fill(text, width=79), flush=True)


def _summary(run: "TrainingRun", report: "RobustnessReport") -> str:
    """What the run reached, and what its worst case means."""
    attacks = " and ".join(
        attack_label(name, entry.get("class_name"), entry.get("steps")).upper()
        for name, entry in report.attacks.items()
    )
    return (
        f"Reached after {run.epochs} epoch(s) of PGD-{STEPS} adversarial "
        f"training: clean accuracy {100 * report.clean_accuracy:.1f}%, "
        f"worst-case robust accuracy {100 * report.worst_case(EPS):.1f}% at "
        f"eps {EPS} under {attacks} (worst case: a test image counts as "
        "robust only if every attack fails on it)."
    )


def _next_steps(
    out: str, model_path: str, log_dir: str, test_samples: int
) -> str:
    """The AutoAttack figure's command and TensorBoard's, runnable."""
    evaluate = ["evaluate", model_path, "--attack", "autoattack"]
    evaluate += ["--eps", f"{EPS:g}"]
    if test_samples < AUTOATTACK_SAMPLES:
        evaluate += ["--max-samples", str(test_samples)]
    evaluate += ["--out", os.path.join(out, "autoattack")]
    why = textwrap.fill(
        "PGD-20 overstates robustness: the figure to quote is AutoAttack's "
        "(APGD-CE, APGD-T, FAB-T and Square, each on the images still "
        "robust; about 10-12 minutes for 1,000 images on a 2-core CPU "
        "machine). Measure it with:",
        width=79,
    )
    # Commands on one line each, to copy as they are.
    return "\n".join(
        [
            why,
            f"    {_shell.command_line('keras-adv', *evaluate)}",
            "",
            "View the training run in TensorBoard:",
            f"    {_shell.command_line('tensorboard', '--logdir', log_dir)}",
        ]
    )
