"""`GANMonitor`: sample grids and a quality metric while a GAN trains."""

import os
from typing import Any
from typing import TypeVar

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Array
from keras_adv._types import Config
from keras_adv._types import ValueRange
from keras_adv.evaluation._plots import image_grid
from keras_adv.metrics import ClassifierFrechetDistance

_GANMonitorT = TypeVar("_GANMonitorT", bound="GANMonitor")


@register
class GANMonitor(keras.callbacks.Callback):
    """Writes sample grids and sample-quality figures while a GAN trains.

    Every `freq` epochs the callback generates `num_samples` images from a
    fixed latent batch (the same one each time, so grids and figures are
    comparable across epochs), then:

    * writes a `grid_size x grid_size` grid of the first samples to
      TensorBoard (`log_dir/gan`, tag `samples`) and, optionally, as a PNG
      file to `image_dir`;
    * if a `classifier` is given, classifies the samples and adds to the
      epoch `logs` (so History, the progress bar, EarlyStopping,
      ModelCheckpoint and Keras' TensorBoard callback placed after this one
      see them): `frechet_distance` (Fréchet distance to `real_data` in the
      classifier's penultimate-layer feature space; needs `real_data`),
      `class_coverage` (fraction of classes predicted at least once),
      `min_class_fraction` (share of the rarest class) and
      `mean_confidence` (mean top-class probability). They are also
      written as TensorBoard scalars under `gan/`.

    The model must be a `keras_adv.models.GAN` (it uses `latent_dim` and
    `generate(latent=...)`).

    Args:
        classifier: Optional built Sequential or Functional classifier of
            the real data (logits or probabilities).
        real_data: Optional array of real samples, the Fréchet reference.
        freq: Int >= 1, evaluate every `freq` epochs. Defaults to `1`.
        num_samples: Int >= 2, samples generated for the figures. Defaults
            to `1000`.
        grid_size: Int >= 1, the grid has `grid_size**2` samples (at most
            `num_samples`). Defaults to `8`.
        log_dir: Optional string, TensorBoard log directory.
        image_dir: Optional string, directory for PNG grids
            (`samples_epoch_0001.png`, ...).
        feature_layer: Name or index of the classifier's feature layer.
            Defaults to the penultimate layer.
        value_range: Pair `(low, high)` of the generated pixel values.
            Defaults to `(0.0, 1.0)`.
        batch_size: Int, batch size of generation and classification.
            Defaults to `250`.
        seed: Int, seed of the fixed latent batch. Defaults to `0`.

    Example:

    ```python
    monitor = keras_adv.callbacks.GANMonitor(
        classifier=cnn, real_data=x_test, freq=5, log_dir="logs/gan"
    )
    history = gan.fit(x_train, epochs=20, callbacks=[monitor])
    history.history["frechet_distance"]
    ```

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to
        a Local Nash Equilibrium",
        [arXiv:1706.08500](https://arxiv.org/abs/1706.08500), 2017.
    """

    def __init__(
        self,
        classifier: keras.Model | None = None,
        real_data: Array | None = None,
        freq: int = 1,
        num_samples: int = 1000,
        grid_size: int = 8,
        log_dir: str | os.PathLike[str] | None = None,
        image_dir: str | os.PathLike[str] | None = None,
        feature_layer: str | int | None = None,
        value_range: ValueRange = (0.0, 1.0),
        batch_size: int = 250,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if classifier is not None and not isinstance(classifier, keras.Model):
            raise TypeError(
                _validation.invalid("classifier", "a keras.Model", classifier)
            )
        if real_data is not None and classifier is None:
            raise ValueError(
                _validation.invalid(
                    "classifier",
                    "a classifier when `real_data` is given",
                    classifier,
                )
            )
        self.classifier = classifier
        self.real_data = real_data
        self.freq = _validation.check_int("freq", freq, minimum=1)
        self.num_samples = _validation.check_int(
            "num_samples", num_samples, minimum=2
        )
        self.grid_size = _validation.check_int(
            "grid_size", grid_size, minimum=1
        )
        if self.grid_size**2 > self.num_samples:
            raise ValueError(
                _validation.invalid(
                    "grid_size", "grid_size**2 <= num_samples", grid_size
                )
            )
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.image_dir = None if image_dir is None else os.fspath(image_dir)
        self.feature_layer = feature_layer
        self.value_range = _validation.check_value_range(value_range)
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        self.seed = _validation.check_int("seed", seed, minimum=0)
        self._evaluator: ClassifierFrechetDistance | None = None
        self._latent: np.ndarray | None = None
        self._writer: tf.summary.SummaryWriter | None = None

    def get_config(self) -> Config:
        """The constructor arguments but `classifier` and `real_data`.

        The classifier and the reference data are objects of the training
        script, not configuration: pass them again to `from_config`'s
        result by constructing with `GANMonitor(classifier, real_data,
        **config)`.
        """
        return {
            "freq": self.freq,
            "num_samples": self.num_samples,
            "grid_size": self.grid_size,
            "log_dir": self.log_dir,
            "image_dir": self.image_dir,
            "feature_layer": self.feature_layer,
            "value_range": list(self.value_range),
            "batch_size": self.batch_size,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls: type[_GANMonitorT], config: Config) -> _GANMonitorT:
        return cls(**config)

    def _setup(self) -> None:
        model = self.model
        latent_dim = getattr(model, "latent_dim", None)
        if latent_dim is None or not hasattr(model, "generate"):
            raise TypeError(
                _validation.invalid(
                    "model", "a keras_adv.models.GAN", type(model).__name__
                )
            )
        if self._latent is None or self._latent.shape[1] != latent_dim:
            rng = np.random.default_rng(self.seed)
            self._latent = rng.standard_normal(
                (self.num_samples, latent_dim)
            ).astype("float32")
        if self.classifier is not None and self._evaluator is None:
            self._evaluator = ClassifierFrechetDistance(
                self.classifier,
                self.real_data,
                layer=self.feature_layer,
                batch_size=self.batch_size,
            )
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "gan")
            )

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._setup()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def evaluate(self) -> tuple[np.ndarray, dict[str, float]]:
        """Generates the fixed-latent samples and computes the figures.

        Returns:
            `(samples, figures)`: the numpy samples and a dict of floats
            (empty without a classifier).
        """
        self._setup()
        samples = self.model.generate(
            latent=self._latent, batch_size=self.batch_size
        )
        figures: dict[str, float] = {}
        if self._evaluator is not None:
            results = self._evaluator.evaluate(samples)
            figures["class_coverage"] = results["coverage"]
            figures["min_class_fraction"] = results["min_class_fraction"]
            figures["mean_confidence"] = results["mean_confidence"]
            if "frechet_distance" in results:
                figures["frechet_distance"] = results["frechet_distance"]
        return samples, figures

    def on_epoch_end(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if (epoch + 1) % self.freq:
            return
        samples, figures = self.evaluate()
        if logs is not None:
            logs.update(figures)
        grid = image_grid(samples, self.grid_size, self.value_range)
        if self._writer is not None:
            with self._writer.as_default():
                tf.summary.image("samples", grid[None], step=epoch)
                for name, value in figures.items():
                    tf.summary.scalar(f"gan/{name}", value, step=epoch)
            self._writer.flush()
        if self.image_dir is not None:
            os.makedirs(self.image_dir, exist_ok=True)
            path = os.path.join(
                self.image_dir, f"samples_epoch_{epoch + 1:04d}.png"
            )
            tf.io.write_file(path, tf.io.encode_png(grid))
