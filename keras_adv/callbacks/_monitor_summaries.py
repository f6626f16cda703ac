"""The TensorBoard run of `RobustnessMonitor` (a `tf.summary` seam).

The monitor writes the run `<log_dir>/robustness` and, because TensorBoard
draws every line of one run in one colour, a small run per series (clean,
each attack, the worst case and, with `certify`, the verified shares),
each holding one scalar tag: `accuracy_under_attack` for what the attacks
leave (an upper bound on robust accuracy), `verified_accuracy` for what
the bounds prove (a lower bound). Once per `fit`, a custom-scalars layout
written with TensorBoard's own `custom_scalar_pb` puts both tags on one
chart, so the curves bracket the truth.
"""

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from keras_adv.attacks import Attack
from keras_adv.evaluation import attack_config

#: The monitor's run, under `log_dir`.
RUN = "robustness"
#: Scalar tag of the accuracies under attack (one run per series).
ACCURACY_TAG = "accuracy_under_attack"
#: Scalar tag of the verified shares (one run per series).
VERIFIED_TAG = "verified_accuracy"
CHART_TITLE = "accuracy under attack (validation subset)"
CERTIFIED_CHART_TITLE = (
    "robust accuracy: verified ({method}, lower bound) and under attack "
    "(upper bound), validation subset"
)
_ACCURACY_NOTE = (
    "Accuracy on the fixed validation subset: clean; under each attack "
    "(correct clean and adversarial); worst case (survives every attack)."
)
_VERIFIED_NOTE = (
    "Share of the fixed validation subset proven robust by {method} bounds: "
    "no input in the attack's ball changes the prediction (a lower bound "
    "on the accuracy under any attack). Run `verified`: at every attack's "
    "ball; `<name>_verified`: at attack <name>'s ball."
)
_MARGIN_NOTE = "True-class logit minus the largest other logit on"
_GRID_NOTE = (
    "Columns: fixed validation samples. Rows: clean input, then per attack "
    "the adversarial input and the perturbation (scaled per image)."
)


def open_writers(
    log_dir: str, series: list[str]
) -> tuple[tf.summary.SummaryWriter, dict[str, tf.summary.SummaryWriter]]:
    """The writer of the run and one per series (`<run>/<series>`)."""
    run = os.path.join(log_dir, RUN)
    writers = {
        name: tf.summary.create_file_writer(os.path.join(run, name))
        for name in series
    }
    return tf.summary.create_file_writer(run), writers


def layout(certify: str | None) -> Any:
    """The custom-scalars layout: one multiline chart of the accuracies.

    With `certify`, its regular expression matches both scalar tags, so
    the verified shares share the chart with the accuracies under attack.
    """
    from tensorboard.plugins.custom_scalar import layout_pb2

    if certify is None:
        title, tags = CHART_TITLE, [f"^{ACCURACY_TAG}$"]
    else:
        title = CERTIFIED_CHART_TITLE.format(method=certify)
        tags = [f"^({ACCURACY_TAG}|{VERIFIED_TAG})$"]
    chart = layout_pb2.Chart(
        title=title, multiline=layout_pb2.MultilineChartContent(tag=tags)
    )
    return layout_pb2.Layout(
        category=[layout_pb2.Category(title=RUN, chart=[chart])]
    )


def setup_text(
    samples: int,
    freq: int,
    attacks: Mapping[str, Attack],
    eps: Mapping[str, float],
    certify: str | None,
) -> str:
    """The markdown of the `setup` text: the subset, attacks, method."""
    text = [
        f"Robustness of the model on a fixed subset of **{samples}** "
        f"validation samples, every {freq} epoch(s). A sample "
        "counts as robust to an attack when it is classified correctly "
        "both clean and under the attack; the **worst case** counts it "
        "only if it survives every attack.",
        "",
        "| attack | class | norm | eps | settings |",
        "|---|---|---|---|---|",
    ]
    for name, attack in attacks.items():
        config = attack_config(attack)
        details = ", ".join(
            f"{k}={config[k]}"
            for k in ("steps", "step_size", "restarts", "loss")
            if config.get(k) is not None
        )
        text.append(
            f"| {name} | {type(attack).__name__} | {attack.norm} | "
            f"{eps[name]:g} | {details} |"
        )
    if certify is not None:
        text += [
            "",
            f"**Verified** ({certify} bounds): the share of samples proven "
            "robust, no input in the ball can change the prediction; a "
            "lower bound on robust accuracy, where the attacks give an "
            "upper bound.",
        ]
    return "\n".join(text)


def write_setup(
    writer: tf.summary.SummaryWriter, chart_layout: Any, text: str
) -> None:
    """Writes the layout and the `setup` text at step 0."""
    from tensorboard.summary import v1 as summary_v1

    with writer.as_default():
        tf.summary.experimental.write_raw_pb(
            summary_v1.custom_scalar_pb(chart_layout).SerializeToString(),
            step=0,
        )
        tf.summary.text("setup", text, step=0)
    writer.flush()


def write_epoch(
    writer: tf.summary.SummaryWriter,
    series_writers: Mapping[str, tf.summary.SummaryWriter],
    epoch: int,
    results: Mapping[str, Any],
    attacks: Mapping[str, Attack],
    grid: np.ndarray | None,
    verified: Mapping[str, float] | None = None,
    certify: str | None = None,
) -> None:
    """Writes one evaluation: scalars per series, histograms, the grid.

    Args:
        writer: The run's writer.
        series_writers: Dict series -> writer.
        epoch: The step (the 0-based epoch).
        results: The monitor's `evaluate` dict.
        attacks: Dict name -> Attack.
        grid: The uint8 image grid, or None.
        verified: Optional dict series -> verified share.
        certify: The bound method of `verified`.
    """
    accuracies = {
        "clean": results["clean_accuracy"],
        **results["accuracy"],
        "worst_case": results["robust_accuracy"],
    }
    scalars = [
        (n, ACCURACY_TAG, v, _ACCURACY_NOTE) for n, v in accuracies.items()
    ]
    note = _VERIFIED_NOTE.format(method=certify)
    scalars += [(n, VERIFIED_TAG, v, note) for n, v in (verified or {}).items()]
    for name, tag, value, description in scalars:
        with series_writers[name].as_default():
            tf.summary.scalar(tag, value, step=epoch, description=description)
        series_writers[name].flush()
    histograms = {
        "logit_margin/clean": (
            results["clean_margin"],
            f"{_MARGIN_NOTE} clean inputs; < 0 means misclassified.",
        )
    }
    for name, attack in attacks.items():
        # Rounded: an L-inf attack puts every norm at eps up to float
        # noise, which would make the histogram axis unreadable.
        histograms[f"perturbation_norm/{name}"] = (
            np.round(results["norm"][name], 4),
            f"Per-sample {attack.norm} norm of x_adv - x under {name} "
            f"(at most eps={results['eps'][name]:g}).",
        )
        if attack.norm != "l2":
            histograms[f"perturbation_l2_norm/{name}"] = (
                results["l2_norm"][name],
                f"Per-sample L2 norm of x_adv - x under {name}: how many "
                "inputs the attack changes, and how much.",
            )
        histograms[f"logit_margin/{name}"] = (
            results["adv_margin"][name],
            f"{_MARGIN_NOTE} {name} adversarials; < 0 means fooled.",
        )
    with writer.as_default():
        for name in attacks:
            tf.summary.scalar(
                f"mean_perturbation_norm/{name}",
                results["norm"][name].mean(),
                step=epoch,
            )
        tf.summary.scalar("evaluation_seconds", results["seconds"], step=epoch)
        if verified is not None:
            tf.summary.scalar(
                "verification_seconds", results["verified_seconds"], step=epoch
            )
        for tag, (values, description) in histograms.items():
            tf.summary.histogram(
                tag, values, step=epoch, description=description
            )
        if grid is not None:
            tf.summary.image(
                "adversarial_examples",
                grid[None],
                step=epoch,
                description=_GRID_NOTE,
            )
    writer.flush()
