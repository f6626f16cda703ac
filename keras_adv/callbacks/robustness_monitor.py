"""`RobustnessMonitor`: robust accuracy in the epoch logs and in TensorBoard.

At the end of every `every`-th epoch the callback attacks a fixed subset of
the validation data with every attack, adds the accuracies to the epoch
`logs` and, with a `log_dir`, writes TensorBoard summaries of its own.

The per-batch work (clean forward pass, every attack, predictions, margins
and perturbation norms) is one `tf.function` with a fixed input signature,
traced once per model: eps values and seeds enter as tensors, so changing
an attack's eps between epochs does not retrace. Only per-sample results
leave the graph. Nothing runs on batch hooks.

This module is one of the TensorFlow seams of keras_adv (`tf.function`,
`tf.summary`).
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv import losses as margin
from keras_adv._api import register
from keras_adv.attacks import ModelLogits
from keras_adv.evaluation.plots import tile_images
from keras_adv.evaluation.robustness import attack_dict
from keras_adv.evaluation.robustness import sparse_labels

# Log keys: `val_robust_accuracy` and `val_<attack>_accuracy`.
ROBUST_KEY = "val_robust_accuracy"
# TensorBoard scalar tag of the accuracies (one run per attack).
ACCURACY_TAG = "accuracy_under_attack"
# The custom-scalars plugin's reserved tag and its plugin name.
_LAYOUT_TAG = "custom_scalars__config__"
_LAYOUT_PLUGIN = "custom_scalars"
_RESERVED_NAMES = ("robust", "clean", "worst_case")


def attack_key(name):
    """The epoch-logs key of the accuracy under attack `name`."""
    return f"val_{name}_accuracy"


# ------------------------------------------------------------------- data
def _fixed_subset(validation_data, max_samples):
    """The first `max_samples` of `validation_data` as numpy `(x, y)`.

    `x` keeps its floating dtype; `y` becomes int64 class ids.
    """
    name = "validation_data"
    if isinstance(validation_data, tf.data.Dataset):
        spec = validation_data.element_spec
        if not isinstance(spec, tuple) or len(spec) not in (2, 3):
            raise ValueError(
                _validation.invalid(
                    name,
                    "a tf.data.Dataset of (x, y) or (x, y, sample_weight)",
                    spec,
                )
            )
        data = validation_data
        if spec[1].shape.rank == 0:
            data = data.batch(256)
        xs, ys, seen = [], [], 0
        for element in data:
            x = np.asarray(element[0])[: max_samples - seen]
            y = np.asarray(element[1])[: max_samples - seen]
            xs.append(x)
            ys.append(y)
            seen += len(x)
            if seen >= max_samples:
                break
        if not xs:
            raise ValueError(_validation.invalid(name, "some samples", 0))
        x, y = np.concatenate(xs), np.concatenate(ys)
    elif isinstance(validation_data, list | tuple) and len(validation_data) in (
        2,
        3,
    ):
        x = np.asarray(validation_data[0])
        y = np.asarray(validation_data[1])
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise ValueError(
                _validation.invalid(
                    name,
                    "arrays x and y with the same number of samples",
                    (x.shape, y.shape),
                )
            )
        x, y = x[:max_samples], y[:max_samples]
    else:
        raise TypeError(
            _validation.invalid(
                name,
                "a pair (x, y) of arrays or a tf.data.Dataset",
                type(validation_data),
            )
        )
    if len(x) == 0:
        raise ValueError(_validation.invalid(name, "at least one sample", 0))
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            _validation.invalid(
                name,
                "floating-point inputs x (scale them to the attacks' "
                "value_range)",
                x.dtype,
            )
        )
    if x.dtype == np.float64:
        x = x.astype("float32")
    if x.ndim < 2:
        raise ValueError(
            _validation.invalid(name, "inputs x of shape (n, ...)", x.shape)
        )
    return x, sparse_labels(y, name="validation_data")


def _is_image_batch(x):
    return x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (1, 3))


# ----------------------------------------------------------------- picture
def _display(images, value_range):
    """Float images in [0, 1] of shape (n, h, w, c)."""
    low, high = value_range
    images = np.clip((np.asarray(images, "float32") - low) / (high - low), 0, 1)
    return images[..., None] if images.ndim == 3 else images


def _plain_grid(rows, gap=2):
    """Tiles rows of (n, h, w, c) images in [0, 1] into RGB uint8."""
    grid = tile_images(rows, gap=gap)
    if grid.shape[-1] == 1:
        grid = np.repeat(grid, 3, axis=-1)
    return np.round(255.0 * grid).astype("uint8")


def robustness_grid(
    x, y, pred_clean, adversarial, value_range=(0.0, 1.0), title=None
):
    """Renders clean inputs and, per attack, adversarials and perturbations.

    One column per sample. Row 1: the clean inputs, titled with the true
    class and the prediction (orange when wrong). Then, for every attack,
    a row of adversarial inputs titled with the new prediction (red and
    "fooled" when it differs from the true class, green otherwise) and a
    row of perturbations `x_adv - x`, each scaled to its own largest
    change (red: pixel brightened, blue: darkened, white: unchanged; for
    RGB images gray is unchanged). Without matplotlib, the rows are tiled
    without labels.

    Args:
        x: Clean images `(n, h, w[, c])`, `c` in {1, 3}.
        y: Int true labels `(n,)`.
        pred_clean: Int predictions on `x`.
        adversarial: Dict `label -> (x_adv, pred_adv)`; `label` names the
            attack in the row headers (e.g. `"pgd\\nlinf eps=0.3"`).
        value_range: Pair `(low, high)` of the inputs.
        title: Optional title above the grid.

    Returns:
        A uint8 array `(height, width, 3)`.
    """
    clean = _display(x, value_range)
    n = clean.shape[0]
    deltas = {}
    for label, (x_adv, _) in adversarial.items():
        delta = np.asarray(x_adv, "float32") - np.asarray(x, "float32")
        if delta.ndim == 3:
            delta = delta[..., None]
        peak = np.max(np.abs(delta), axis=(1, 2, 3), keepdims=True)
        deltas[label] = delta / np.maximum(peak, 1e-12)  # in [-1, 1]
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        rows = [clean]
        for label, (x_adv, _) in adversarial.items():
            rows.append(_display(x_adv, value_range))
            rows.append(0.5 + 0.5 * deltas[label])
        return _plain_grid(rows)

    num_rows = 1 + 2 * len(adversarial)
    top = 0.55 if title else 0.1
    fig = Figure(figsize=(1.3 + 1.05 * n, top + 1.3 * num_rows), dpi=80)
    FigureCanvasAgg(fig)
    axes = fig.subplots(num_rows, n, squeeze=False)

    def show(ax, image, **kwargs):
        if image.shape[-1] == 1:
            ax.imshow(image[..., 0], **kwargs)
        else:
            ax.imshow(image, vmin=0.0, vmax=1.0)
        ax.set_xticks([])
        ax.set_yticks([])

    for i in range(n):
        show(axes[0, i], clean[i], cmap="gray", vmin=0.0, vmax=1.0)
        ok = int(pred_clean[i]) == int(y[i])
        axes[0, i].set_title(
            f"true {int(y[i])}\npred {int(pred_clean[i])}",
            fontsize=9,
            color="black" if ok else "darkorange",
        )
    axes[0, 0].set_ylabel("clean", fontsize=9)
    for a, (label, (x_adv, pred_adv)) in enumerate(adversarial.items()):
        adv = _display(x_adv, value_range)
        adv_row, delta_row = 1 + 2 * a, 2 + 2 * a
        for i in range(n):
            show(axes[adv_row, i], adv[i], cmap="gray", vmin=0.0, vmax=1.0)
            if int(pred_clean[i]) != int(y[i]):
                note, color = "\n(wrong clean)", "darkorange"
            elif int(pred_adv[i]) != int(y[i]):
                note, color = "\nfooled", "red"
            else:
                note, color = "", "green"
            axes[adv_row, i].set_title(
                f"pred {int(pred_adv[i])}{note}", fontsize=9, color=color
            )
            delta = deltas[label][i]
            if delta.shape[-1] == 1:
                show(axes[delta_row, i], delta, cmap="bwr", vmin=-1, vmax=1)
            else:
                show(axes[delta_row, i], 0.5 + 0.5 * delta)
        axes[adv_row, 0].set_ylabel(f"adversarial\n{label}", fontsize=9)
        axes[delta_row, 0].set_ylabel("perturbation\nred +, blue -", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


# ---------------------------------------------------------------- callback
@register
class RobustnessMonitor(keras.callbacks.Callback):
    """Measures robust accuracy every few epochs; logs it and shows it.

    At the end of every `every`-th epoch (epochs `every`, `2 * every`, ...,
    counted from 1) the callback attacks a fixed subset of the validation
    data (its first `max_samples` samples, taken once at construction)
    with every attack, at the attack's current `eps`, against the true
    labels, and adds to the epoch `logs`, as Python floats:

    * `val_<name>_accuracy` for every attack: the share of samples
      classified correctly both clean and under that attack;
    * `val_robust_accuracy`: the worst case, the share of samples that
      survive every attack (and are correct clean).

    Order of callbacks: Keras passes one logs dict through the callbacks in
    list order, so put the monitor BEFORE the callbacks that read its keys:
    `keras.callbacks.TensorBoard` (it then logs `epoch_robust_accuracy`
    etc. under its `validation` run), `EarlyStopping` and
    `ModelCheckpoint(monitor="val_robust_accuracy")`. `History` and the
    progress bar need no care: `fit` appends them after your callbacks,
    and if you pass your own `History` before the monitor, the monitor
    adds its values to `model.history` itself. On epochs where the monitor
    does not run, its keys are absent from the logs (no stale values), so
    `history.history["val_robust_accuracy"]` has one entry per evaluated
    epoch. EarlyStopping and ModelCheckpoint need `mode="max"` for these
    keys (Keras cannot infer their direction) and, with `every > 1`, warn
    on and skip the epochs without them (EarlyStopping's `patience` then
    counts evaluations).

    With `log_dir` the callback writes to its own run `<log_dir>/robustness`
    (beside Keras' `train` and `validation` runs when both use the same
    `log_dir`), with the epoch (0-based, like Keras) as step:

    * the accuracies on the subset as one scalar tag,
      `accuracy_under_attack`, in one small run per series:
      `robustness/clean`, `robustness/<name>` for every attack and
      `robustness/worst_case`. TensorBoard colours lines by run, so its
      Scalars tab shows them as one chart with one coloured line each;
    * scalars `mean_perturbation_norm/<name>` and `evaluation_seconds`;
    * one image per evaluation, tag `adversarial_examples`: the first
      `images` samples (the same ones every time) as a grid with a row of
      clean inputs, then per attack a row of adversarial inputs and a row
      of perturbations scaled for viewing, titled with true and predicted
      classes (image inputs only);
    * histograms `perturbation_norm/<name>` (per-sample distance in the
      attack's norm, rounded to 4 decimals), `perturbation_l2_norm/<name>`
      (for L-inf attacks, whose L-inf norms all sit at eps) and
      `logit_margin/clean`, `logit_margin/<name>` (true-class logit minus
      the largest other logit: negative means misclassified);
    * once per `fit`: a text summary `setup` (attacks, eps, subset size)
      and a custom-scalars layout (TensorBoard's "Custom Scalars" tab) with
      one chart, "accuracy under attack", holding the clean accuracy, the
      accuracy of every attack and the worst case.

    Evaluation is deterministic: random starts use fixed stateless seeds,
    so figures change across epochs only because the model does.

    Args:
        validation_data: A pair `(x, y)` of arrays (x floating point in the
            attacks' `value_range`, y int labels or one-hot) or a
            `tf.data.Dataset` of `(x, y)` elements, batched or not (it is
            iterated once, at construction).
        attacks: An attack, a list of attacks (named after their class in
            lower case: `"fgsm"`, `"pgd"`, repeats get `_2`, ...), a dict
            `name -> attack`, or None for `FGSM()` and `PGD(steps=10)`
            (L-inf, eps 0.3, value range [0, 1]). Attacks must be
            untargeted. Defaults to `None`.
        every: Int >= 1, evaluate every `every` epochs. Defaults to `1`.
        max_samples: Int >= 1, size of the fixed subset. Defaults to `512`.
        log_dir: Optional path of the TensorBoard log directory (the same
            as Keras' TensorBoard callback). Defaults to `None`.
        images: Int >= 0, samples in the image grid (0: no image).
            Defaults to `8`.
        batch_size: Int >= 1, batch size of the evaluation. Defaults to
            `256`.
        seed: Int >= 0, base of the fixed seeds of the attacks' random
            starts. Defaults to `0`.
        verbose: 0 (silent) or 1 (print one line per evaluation with the
            clean accuracy and the time taken). Defaults to `0`.

    Raises:
        TypeError: for validation data that is not an `(x, y)` pair or a
            dataset, non-float inputs, or attacks that are not keras_adv
            attacks.
        ValueError: for invalid numbers, mismatched or malformed data,
            inputs outside an attack's value range, targeted attacks,
            non-scalar eps, or attack names that clash with the log keys.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> x = np.random.default_rng(0).uniform(size=(64, 4)).astype("float32")
    >>> y = (x[:, 0] > 0.5).astype("int64")
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
    ...     from_logits=True))
    >>> monitor = keras_adv.callbacks.RobustnessMonitor(
    ...     (x, y), attacks=keras_adv.attacks.FGSM(eps=0.1), max_samples=32)
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[monitor])
    >>> sorted(k for k in history.history if k.startswith("val_"))
    ['val_fgsm_accuracy', 'val_robust_accuracy']
    >>> len(history.history["val_robust_accuracy"])
    2

    Reference:
        Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning
        Models Resistant to Adversarial Attacks", ICLR 2018,
        arXiv:1706.06083. Carlini et al., "On Evaluating Adversarial
        Robustness", 2019, arXiv:1902.06705.
    """

    def __init__(
        self,
        validation_data,
        attacks=None,
        every=1,
        max_samples=512,
        log_dir=None,
        images=8,
        batch_size=256,
        seed=0,
        verbose=0,
    ):
        super().__init__()
        self.every = _validation.check_int("every", every, minimum=1)
        self.max_samples = _validation.check_int(
            "max_samples", max_samples, minimum=1
        )
        self.images = _validation.check_int("images", images, minimum=0)
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        self.seed = _validation.check_int("seed", seed, minimum=0)
        if verbose not in (0, 1):
            raise ValueError(_validation.invalid("verbose", "0 or 1", verbose))
        self.verbose = int(verbose)
        if log_dir is not None and not isinstance(log_dir, str | os.PathLike):
            raise TypeError(
                _validation.invalid("log_dir", "a path or None", log_dir)
            )
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.attacks = attack_dict(attacks)
        for name, attack in self.attacks.items():
            if name in _RESERVED_NAMES:
                raise ValueError(
                    _validation.invalid(
                        "attacks",
                        f"attack names other than {list(_RESERVED_NAMES)} "
                        "(they name the log keys of the monitor)",
                        name,
                    )
                )
            self._eps_value(name, attack)
        self.x, self.y = _fixed_subset(validation_data, self.max_samples)
        low = float(np.min(self.x))
        high = float(np.max(self.x))
        for name, attack in self.attacks.items():
            a_low, a_high = attack.value_range
            if low < a_low - 1e-6 or high > a_high + 1e-6:
                raise ValueError(
                    _validation.invalid(
                        "validation_data",
                        f"inputs in the value_range {attack.value_range} of "
                        f"attack {name!r}",
                        (low, high),
                    )
                )
        self._step = None
        self._step_model = None
        self._writer = None
        self._series_writers = {}
        self.last_results = None

    # ---------------------------------------------------------- config
    def get_config(self):
        """The constructor arguments but `validation_data`.

        The data is an object of the training script, not configuration:
        rebuild with `RobustnessMonitor.from_config({**config,
        "validation_data": (x, y)})`.
        """
        return {
            "attacks": {
                name: keras.saving.serialize_keras_object(attack)
                for name, attack in self.attacks.items()
            },
            "every": self.every,
            "max_samples": self.max_samples,
            "log_dir": self.log_dir,
            "images": self.images,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "validation_data" not in config:
            raise ValueError(
                "RobustnessMonitor.from_config needs the validation data: "
                "pass {**config, 'validation_data': (x, y)}."
            )
        attacks = config.get("attacks")
        if isinstance(attacks, dict):
            config["attacks"] = {
                name: keras.saving.deserialize_keras_object(attack)
                if isinstance(attack, dict)
                else attack
                for name, attack in attacks.items()
            }
        return cls(**config)

    # ------------------------------------------------------ evaluation
    @staticmethod
    def _eps_value(name, attack):
        """The attack's current eps as a float (variables are read)."""
        eps = np.asarray(ops.convert_to_numpy(attack.eps), "float32")
        if eps.ndim != 0:
            raise ValueError(
                _validation.invalid(
                    "attacks",
                    f"attacks with a scalar eps (attack {name!r})",
                    eps.shape,
                )
            )
        return float(eps)

    def _check_classes(self, model):
        """Eager check (once per model) of the output shape and labels."""
        outputs = model(self.x[:1], training=False)
        if isinstance(outputs, list | tuple | dict) or len(outputs.shape) != 2:
            raise ValueError(
                "RobustnessMonitor needs a classifier with one output of "
                "shape (batch, classes). Received: "
                f"{keras.tree.map_structure(lambda t: t.shape, outputs)}"
            )
        num_classes = int(outputs.shape[-1])
        if self.y.max() >= num_classes:
            raise ValueError(
                _validation.invalid(
                    "validation_data",
                    f"labels < {num_classes} (the model's classes)",
                    int(self.y.max()),
                )
            )

    def _build_step(self, model):
        """Traces nothing yet: returns the `tf.function` of one batch."""
        attacks = list(self.attacks.values())
        probe = attacks[0]
        logits = ModelLogits(
            model, probe.model_logits(model).from_logits, training=False
        )
        x_spec = tf.TensorSpec([None] + list(self.x.shape[1:]), self.x.dtype)

        def step(x, y, eps, seeds):
            y32 = ops.cast(y, "int32")
            clean_logits = logits(x)
            clean_pred = ops.argmax(clean_logits, axis=-1)
            result = {
                "clean_pred": ops.cast(clean_pred, "int64"),
                "clean_margin": -margin.margin_loss(y32, clean_logits),
            }
            for i, attack in enumerate(attacks):
                x_adv = attack.perturb(model, x, y32, eps=eps[i], seed=seeds[i])
                adv_logits = logits(x_adv)
                result[f"adv_pred_{i}"] = ops.cast(
                    ops.argmax(adv_logits, axis=-1), "int64"
                )
                result[f"adv_margin_{i}"] = -margin.margin_loss(y32, adv_logits)
                result[f"norm_{i}"] = attack.threat_model.distance(x, x_adv)
                delta = ops.cast(x_adv, "float32") - ops.cast(x, "float32")
                axes = list(range(1, len(x.shape)))
                result[f"l2_norm_{i}"] = ops.sqrt(
                    ops.sum(delta * delta, axis=axes)
                )
                result[f"x_adv_{i}"] = x_adv
            return result

        return tf.function(
            step,
            input_signature=[
                x_spec,
                tf.TensorSpec([None], "int64"),
                tf.TensorSpec([len(attacks)], "float32"),
                tf.TensorSpec([len(attacks), 2], "int32"),
            ],
        )

    def tracing_count(self):
        """Traces of the evaluation graph so far (1 after the first run)."""
        if self._step is None:
            return 0
        return self._step.experimental_get_tracing_count()

    def evaluate(self, model=None):
        """Evaluates `model` (default: the trained model) on the subset.

        Returns:
            A dict with `"clean_accuracy"`, `"robust_accuracy"`,
            `"accuracy"` (name -> float), `"eps"` (name -> float),
            `"seconds"` and per-sample numpy arrays: `"clean_pred"`,
            `"clean_margin"`, `"adv_pred"`, `"adv_margin"`, `"norm"` (in
            the attack's norm), `"l2_norm"` (dicts name -> array) and
            `"x_adv"` (name -> the first `images` adversarial inputs).
        """
        model = self.model if model is None else model
        if not isinstance(model, keras.Model):
            raise TypeError(
                _validation.invalid("model", "a keras.Model", model)
            )
        if self._step is None or self._step_model is not model:
            self._check_classes(model)
            self._step = self._build_step(model)
            self._step_model = model
        names = list(self.attacks)
        eps = np.asarray(
            [self._eps_value(n, a) for n, a in self.attacks.items()], "float32"
        )
        start = time.perf_counter()
        parts = []
        for b, begin in enumerate(range(0, len(self.x), self.batch_size)):
            stop = begin + self.batch_size
            seeds = np.asarray(
                [[self.seed + i, b] for i in range(len(names))], "int32"
            )
            out = self._step(
                tf.convert_to_tensor(self.x[begin:stop]),
                tf.convert_to_tensor(self.y[begin:stop]),
                tf.convert_to_tensor(eps),
                tf.convert_to_tensor(seeds),
            )
            keep = max(0, self.images - begin)
            parts.append(
                {
                    k: np.asarray(v)[:keep]
                    if k.startswith("x_adv")
                    else np.asarray(v)
                    for k, v in out.items()
                }
            )
        seconds = time.perf_counter() - start
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        clean_ok = merged["clean_pred"] == self.y
        survivors = clean_ok.copy()
        results = {
            "clean_accuracy": float(clean_ok.mean()),
            "accuracy": {},
            "eps": dict(zip(names, eps.tolist(), strict=True)),
            "clean_pred": merged["clean_pred"],
            "clean_margin": merged["clean_margin"],
            "adv_pred": {},
            "adv_margin": {},
            "norm": {},
            "l2_norm": {},
            "x_adv": {},
            "seconds": seconds,
        }
        for i, name in enumerate(names):
            ok = np.logical_and(clean_ok, merged[f"adv_pred_{i}"] == self.y)
            survivors &= ok
            results["accuracy"][name] = float(ok.mean())
            results["adv_pred"][name] = merged[f"adv_pred_{i}"]
            results["adv_margin"][name] = merged[f"adv_margin_{i}"]
            results["norm"][name] = merged[f"norm_{i}"]
            results["l2_norm"][name] = merged[f"l2_norm_{i}"]
            results["x_adv"][name] = merged[f"x_adv_{i}"]
        results["robust_accuracy"] = float(survivors.mean())
        return results

    # --------------------------------------------------------- hooks
    def on_train_begin(self, logs=None):
        if self.log_dir is not None and self._writer is None:
            run = os.path.join(self.log_dir, "robustness")
            self._writer = tf.summary.create_file_writer(run)
            series = ["clean", *self.attacks, "worst_case"]
            self._series_writers = {
                name: tf.summary.create_file_writer(os.path.join(run, name))
                for name in series
            }
            self._write_setup()

    def on_train_end(self, logs=None):
        for writer in self._series_writers.values():
            writer.close()
        self._series_writers = {}
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        results = self.evaluate()
        self.last_results = results
        values = {
            attack_key(name): acc for name, acc in results["accuracy"].items()
        }
        values[ROBUST_KEY] = results["robust_accuracy"]
        if logs is not None:
            logs.update(values)
        self._backfill_history(epoch, values)
        if self.verbose:
            parts = ", ".join(
                f"{name} {100 * acc:.1f}%"
                for name, acc in results["accuracy"].items()
            )
            print(
                f"RobustnessMonitor epoch {epoch + 1}: clean "
                f"{100 * results['clean_accuracy']:.1f}%, {parts}, worst "
                f"case {100 * results['robust_accuracy']:.1f}% on "
                f"{len(self.x)} samples ({results['seconds']:.1f} s)"
            )
        if self._writer is not None:
            self._write_summaries(epoch, results)

    def _backfill_history(self, epoch, values):
        """Adds the values to a `History` that already ran for `epoch`."""
        history = getattr(self.model, "history", None)
        if not isinstance(history, keras.callbacks.History):
            return
        epochs = getattr(history, "epoch", None)
        if not epochs or epochs[-1] != epoch:
            return  # History comes after the monitor: it sees the logs.
        for key, value in values.items():
            series = history.history.setdefault(key, [])
            if len(series) < len(epochs):
                series.append(value)

    # ---------------------------------------------------- TensorBoard
    def _attack_label(self, name, eps):
        attack = self.attacks[name]
        return f"{name}\n{attack.norm} eps={eps:g}"

    def _write_setup(self):
        from tensorboard.plugins.custom_scalar import layout_pb2

        layout = layout_pb2.Layout(
            category=[
                layout_pb2.Category(
                    title="robustness",
                    chart=[
                        layout_pb2.Chart(
                            title="accuracy under attack (validation subset)",
                            multiline=layout_pb2.MultilineChartContent(
                                tag=[f"^{ACCURACY_TAG}$"]
                            ),
                        ),
                    ],
                )
            ]
        )
        metadata = tf.compat.v1.SummaryMetadata()
        metadata.plugin_data.plugin_name = _LAYOUT_PLUGIN
        rows = []
        for name, attack in self.attacks.items():
            config = attack.get_config()
            details = ", ".join(
                f"{k}={config[k]}"
                for k in ("steps", "step_size", "restarts", "loss")
                if config.get(k) is not None
            )
            rows.append(
                f"| {name} | {type(attack).__name__} | {attack.norm} | "
                f"{self._eps_value(name, attack):g} | {details} |"
            )
        text = "\n".join(
            [
                f"Robustness of the model on a fixed subset of "
                f"**{len(self.x)}** validation samples, every "
                f"{self.every} epoch(s). A sample counts as robust to an "
                "attack when it is classified correctly both clean and "
                "under the attack; the **worst case** counts it only if it "
                "survives every attack.",
                "",
                "| attack | class | norm | eps | settings |",
                "|---|---|---|---|---|",
                *rows,
            ]
        )
        with self._writer.as_default():
            tf.summary.write(
                _LAYOUT_TAG,
                tf.constant(layout.SerializeToString()),
                step=0,
                metadata=metadata,
            )
            tf.summary.text("setup", text, step=0)
        self._writer.flush()

    def _write_summaries(self, epoch, results):
        accuracies = {
            "clean": results["clean_accuracy"],
            **results["accuracy"],
            "worst_case": results["robust_accuracy"],
        }
        for name, value in accuracies.items():
            with self._series_writers[name].as_default():
                tf.summary.scalar(
                    ACCURACY_TAG,
                    value,
                    step=epoch,
                    description="Accuracy on the fixed validation subset: "
                    "clean; under each attack (correct clean and "
                    "adversarial); worst case (survives every attack). One "
                    "run per line.",
                )
            self._series_writers[name].flush()
        with self._writer.as_default():
            for name in results["accuracy"]:
                eps = results["eps"][name]
                norms = results["norm"][name]
                tf.summary.scalar(
                    f"mean_perturbation_norm/{name}",
                    float(norms.mean()),
                    step=epoch,
                )
                # Rounded: an L-inf attack puts every norm at eps up to
                # float noise, which would make the histogram axis unreadable.
                tf.summary.histogram(
                    f"perturbation_norm/{name}",
                    np.round(norms, 4),
                    step=epoch,
                    description=f"Per-sample {self.attacks[name].norm} "
                    f"norm of x_adv - x under {name} (at most eps={eps:g}).",
                )
                if self.attacks[name].norm != "l2":
                    tf.summary.histogram(
                        f"perturbation_l2_norm/{name}",
                        results["l2_norm"][name],
                        step=epoch,
                        description=f"Per-sample L2 norm of x_adv - x under "
                        f"{name}: how many inputs the attack changes, and "
                        "how much.",
                    )
                tf.summary.histogram(
                    f"logit_margin/{name}",
                    results["adv_margin"][name],
                    step=epoch,
                    description="True-class logit minus the largest other "
                    f"logit on {name} adversarials; < 0 means fooled.",
                )
            tf.summary.scalar(
                "evaluation_seconds", results["seconds"], step=epoch
            )
            tf.summary.histogram(
                "logit_margin/clean",
                results["clean_margin"],
                step=epoch,
                description="True-class logit minus the largest other "
                "logit on clean inputs; < 0 means misclassified.",
            )
            grid = self.grid_image(epoch, results)
            if grid is not None:
                tf.summary.image(
                    "adversarial_examples",
                    grid[None],
                    step=epoch,
                    description="Columns: fixed validation samples. Rows: "
                    "clean input, then per attack the adversarial input "
                    "and the perturbation (scaled per image).",
                )
        self._writer.flush()

    def grid_image(self, epoch, results):
        """The uint8 grid image of an evaluation, or None (no images)."""
        n = min(self.images, len(self.x))
        if n == 0 or not _is_image_batch(self.x):
            return None
        adversarial = {}
        for name in self.attacks:
            label = self._attack_label(name, results["eps"][name])
            adversarial[label] = (
                results["x_adv"][name][:n],
                results["adv_pred"][name][:n],
            )
        accs = ", ".join(
            f"{name} {100 * acc:.0f}%"
            for name, acc in results["accuracy"].items()
        )
        title = (
            f"epoch {epoch + 1}: accuracy clean "
            f"{100 * results['clean_accuracy']:.0f}%, {accs}, worst case "
            f"{100 * results['robust_accuracy']:.0f}% "
            f"({len(self.x)} samples)"
        )
        value_range = next(iter(self.attacks.values())).value_range
        return robustness_grid(
            self.x[:n],
            self.y[:n],
            results["clean_pred"][:n],
            adversarial,
            value_range=value_range,
            title=title,
        )
