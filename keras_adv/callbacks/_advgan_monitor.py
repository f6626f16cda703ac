"""`AdvGANMonitor`: what an AdvGAN's generator does, epoch by epoch."""

import os
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv.evaluation._plots import adversarial_grid
from keras_adv.evaluation._plots import is_image_batch

if TYPE_CHECKING:
    from keras_adv.models import AdvGAN

_AdvGANMonitorT = TypeVar("_AdvGANMonitorT", bound="AdvGANMonitor")

#: Figures added to the epoch logs.
FIGURES = (
    "val_success_rate",
    "val_perturbation_norm",
    "val_top_label_share",
    "val_label_entropy",
)


def label_figures(
    predicted: ArrayLike, num_classes: int
) -> tuple[float, float]:
    """Share of the most frequent label and the entropy (nats) of labels.

    A generator that sends every input to the same class (mode collapse)
    shows a top-label share near 1 and an entropy near 0; ten balanced
    labels give 0.1 and `log(10)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.callbacks._advgan_monitor import label_figures
    >>> share, entropy = label_figures(np.array([3, 3, 3, 3]), 10)
    >>> share, entropy
    (1.0, 0.0)
    """
    counts = np.bincount(np.asarray(predicted), minlength=num_classes)
    p = counts / max(counts.sum(), 1)
    nonzero = p[p > 0]
    entropy = -float((nonzero * np.log(nonzero)).sum()) + 0.0  # no -0.0
    return float(p.max()), entropy


@register
class AdvGANMonitor(keras.callbacks.Callback):
    """Watches an AdvGAN's attack on fixed validation data while it trains.

    Every `freq` epochs the callback runs the generator on the first
    `max_samples` validation inputs (and, when targeted, fixed random
    targets drawn once from the classes other than each label), classifies
    `x + G(x)` with the target model and:

    * adds to the epoch `logs` (History, EarlyStopping, ModelCheckpoint and
      a later TensorBoard callback see them): `val_success_rate` (share
      misclassified, or classified as the target), `val_perturbation_norm`
      (mean L2 norm of `x_adv - x`), `val_top_label_share` (share of the
      most frequent adversarial label) and `val_label_entropy` (entropy of
      the adversarial labels, nats) - a collapse of the generator to one
      label drives the share to 1 and the entropy to 0;
    * with `log_dir`, writes to TensorBoard (`log_dir/advgan`) a grid of
      the first `num_images` inputs: `x` with its label and prediction,
      `x + G(x)` with the new prediction and `G(x)` (tag `x_G(x)_x+G(x)`),
      a histogram of the adversarial labels (`adversarial_labels`) and the
      figures as scalars;
    * with `image_dir`, saves the grid as a PNG per epoch.

    Args:
        validation_data: Pair `(x, y)` of arrays: inputs in the AdvGAN's
            value range, labels as class ids `(n,)`, `(n, 1)` or one-hot
            rows, classes of the AdvGAN's target model (checked when
            training begins: a `ValueError` naming `validation_data`).
        freq: Int >= 1. Defaults to `1`.
        max_samples: Int >= 1, validation samples attacked. Defaults to
            `1000`.
        num_images: Int >= 1, columns of the grid. Defaults to `8`.
        log_dir: Optional TensorBoard directory.
        image_dir: Optional directory of PNG grids.
        batch_size: Int >= 1. Defaults to `256`.
        seed: Int >= 0, seed of the fixed targets. Defaults to `0`.

    Example:

    ```python
    monitor = keras_adv.callbacks.AdvGANMonitor(
        (x_test, y_test), log_dir="logs/advgan")
    history = advgan.fit(x, y, epochs=10, callbacks=[monitor])
    history.history["val_top_label_share"]  # 1.0 means collapse
    ```

    Reference:
        Xiao et al., "Generating Adversarial Examples with Adversarial
        Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610).
    """

    def __init__(
        self,
        validation_data: Sequence[ArrayLike],
        freq: int = 1,
        max_samples: int = 1000,
        num_images: int = 8,
        log_dir: str | os.PathLike[str] | None = None,
        image_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if (
            not isinstance(validation_data, list | tuple)
            or len(validation_data) != 2
        ):
            raise ValueError(
                _validation.invalid(
                    "validation_data",
                    "a pair (x, y) of arrays",
                    validation_data,
                )
            )
        self.freq = _validation.check_int("freq", freq, minimum=1)
        self.max_samples = _validation.check_int(
            "max_samples", max_samples, minimum=1
        )
        self.num_images = _validation.check_int(
            "num_images", num_images, minimum=1
        )
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        self.seed = _validation.check_int("seed", seed, minimum=0)
        x, y = validation_data
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype.kind != "f":
            raise TypeError(
                _validation.invalid(
                    "validation_data", "float inputs", f"dtype {x.dtype}"
                )
            )
        # One-hot rows become ids here, before any slicing; the number of
        # classes is checked against the AdvGAN's when it is known.
        self._label_width = y.shape[1] if y.ndim == 2 else None
        y = _validation.class_ids(y, name="validation_data")
        if x.ndim == 0 or len(x) != len(y) or not len(x):
            raise ValueError(
                _validation.invalid(
                    "validation_data",
                    "non-empty x and y of the same length",
                    f"{len(x)} inputs and {len(y)} labels",
                )
            )
        self.x = x[: self.max_samples].astype("float32")
        self.y = y[: self.max_samples]
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.image_dir = None if image_dir is None else os.fspath(image_dir)
        self._writer: tf.summary.SummaryWriter | None = None
        self._targets: np.ndarray | None = None
        self._checked_for: keras.Model | None = None
        self.last_results: dict[str, Any] | None = None

    def get_config(self) -> Config:
        """The constructor arguments but `validation_data`."""
        return {
            "freq": self.freq,
            "max_samples": self.max_samples,
            "num_images": self.num_images,
            "log_dir": self.log_dir,
            "image_dir": self.image_dir,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }

    @classmethod
    def from_config(
        cls: type[_AdvGANMonitorT], config: Config
    ) -> _AdvGANMonitorT:
        config = dict(config)
        if "validation_data" not in config:
            raise ValueError(
                "AdvGANMonitor.from_config needs the validation data: pass "
                "{**config, 'validation_data': (x, y)}."
            )
        return cls(**config)

    def _check_model(self) -> "AdvGAN":
        model = self.model
        if not (hasattr(model, "target_model") and hasattr(model, "generate")):
            raise TypeError(
                _validation.invalid(
                    "model",
                    "a keras_adv.models.AdvGAN",
                    type(model).__name__,
                )
            )
        if self._checked_for is not model:
            self._check_data(model)
            self._checked_for = model
        return model

    def _check_data(self, model: "AdvGAN") -> None:
        """The validation data against the AdvGAN: classes, value range."""
        owner = "the classes of the AdvGAN's target model"
        width = self._label_width
        if width not in (None, 1) and width != model.num_classes:
            raise ValueError(
                _validation.invalid(
                    "validation_data",
                    f"one-hot labels of {model.num_classes} classes ({owner})",
                    f"one-hot labels of {width} classes",
                )
            )
        _validation.check_classes(
            self.y, model.num_classes, name="validation_data", owner=owner
        )
        _validation.check_value_range_of(
            self.x, model.value_range, name="validation_data"
        )

    def targets(self) -> np.ndarray | None:
        """The fixed targets (targeted AdvGAN), or None."""
        model = self._check_model()
        if not model.targeted:
            return None
        if self._targets is None:
            rng = np.random.default_rng(self.seed)
            shift = rng.integers(1, model.num_classes, size=len(self.y))
            self._targets = (self.y + shift) % model.num_classes
        return self._targets

    def evaluate(self) -> dict[str, Any]:
        """Attacks the fixed validation data.

        Returns:
            Dict with the figures (`FIGURES`) and the arrays `x_adv`,
            `predicted_clean`, `predicted` and `targets`.
        """
        model = self._check_model()
        targets = self.targets()
        x_adv = model.generate(self.x, targets, batch_size=self.batch_size)
        logits = model.target_logits

        def predict(data: np.ndarray) -> np.ndarray:
            return np.concatenate(
                [
                    np.asarray(logits(data[i : i + self.batch_size])).argmax(-1)
                    for i in range(0, len(data), self.batch_size)
                ]
            )

        predicted = predict(x_adv)
        predicted_clean = predict(self.x)
        if targets is None:
            success = np.mean(predicted != self.y)
        else:
            success = np.mean(predicted == targets)
        diff = (x_adv - self.x).reshape(len(self.x), -1).astype("float64")
        share, entropy = label_figures(predicted, model.num_classes)
        results = {
            "val_success_rate": float(success),
            "val_perturbation_norm": float(
                np.sqrt((diff**2).sum(axis=1)).mean()
            ),
            "val_top_label_share": share,
            "val_label_entropy": entropy,
            "x_adv": x_adv,
            "predicted_clean": predicted_clean,
            "predicted": predicted,
            "targets": targets,
        }
        self.last_results = results
        return results

    def grid_image(self, results: Mapping[str, Any]) -> np.ndarray:
        """The uint8 RGB grid of x / x + G(x) / G(x) for the first images."""
        n = min(self.num_images, len(self.x))
        label = "x + G(x)"
        if results["targets"] is not None:
            label = "x + G(x, t)\ntargets " + " ".join(
                str(int(t)) for t in results["targets"][:n]
            )
        return adversarial_grid(
            self.x[:n],
            results["x_adv"][:n],
            self.y[:n],
            results["predicted_clean"][:n],
            results["predicted"][:n],
            value_range=self.model.value_range,
            attack_label=label,
        )

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._check_model()
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "advgan")
            )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def on_epoch_end(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if (epoch + 1) % self.freq:
            return
        results = self.evaluate()
        figures = {k: results[k] for k in FIGURES}
        if logs is not None:
            logs.update(figures)
        images = is_image_batch(self.x)
        grid = self.grid_image(results) if images else None
        if self._writer is not None:
            with self._writer.as_default():
                if grid is not None:
                    tf.summary.image("x_G(x)_x+G(x)", grid[None], step=epoch)
                tf.summary.histogram(
                    "adversarial_labels",
                    results["predicted"].astype("float32"),
                    step=epoch,
                    buckets=self.model.num_classes,
                )
                for name, value in figures.items():
                    tf.summary.scalar(f"advgan/{name}", value, step=epoch)
            self._writer.flush()
        if self.image_dir is not None and grid is not None:
            os.makedirs(self.image_dir, exist_ok=True)
            path = os.path.join(
                self.image_dir, f"advgan_epoch_{epoch + 1:04d}.png"
            )
            tf.io.write_file(path, tf.io.encode_png(grid))
