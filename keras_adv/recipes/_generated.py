"""The generated-data recipe (Gowal et al. 2021): its data, then its training.

* `generate_training_data`: a non-robust classifier (the pseudo-labeller)
  and a class-conditional GAN trained on the real data alone, then a fixed
  set of generated images labelled by the classifier, with the figures
  that say how good the generator is (Frechet distance and class coverage
  in the classifier's feature space, how often the classifier agrees with
  the class the generator was asked for).
* `mnist_generated_data_training`: the whole pipeline on the embedded
  MNIST subset: the data above, TRADES on batches of 30 % real images with
  weight averaging (`robust_fit(generated=..., ema_momentum=...)`), and
  AutoAttack and PGD-20 on the test images.
"""

import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from numpy.typing import ArrayLike

from keras_adv import _validation
from keras_adv.attacks import PGD
from keras_adv.attacks import AutoAttack
from keras_adv.datasets import load_mnist_subset
from keras_adv.datasets import make_pseudo_labelled
from keras_adv.evaluation import evaluate_robustness
from keras_adv.metrics import ClassifierFrechetDistance
from keras_adv.models import GAN
from keras_adv.models import ConditionalGAN
from keras_adv.models import conditional_dcgan_generator
from keras_adv.models import mnist_cnn
from keras_adv.models import projection_discriminator
from keras_adv.models import small_cnn
from keras_adv.recipes._robust_fit import TrainingRun
from keras_adv.recipes._robust_fit import _check_data
from keras_adv.recipes._robust_fit import robust_fit

__all__ = [
    "GeneratedData",
    "generate_training_data",
    "mnist_generated_data_training",
]

# The GAN recipe's settings (Miyato and Koyama's projection cGAN, hinge
# loss, Adam 2e-4 with beta_1 0.5, as in DCGAN).
_GAN_LEARNING_RATE = 2e-4
_GAN_BETA_1 = 0.5
_LABELLER_BATCH = 64
# The image sizes the conditional DCGAN builders make.
_GAN_SIZES = ((28, 28), (32, 32))


@dataclasses.dataclass(frozen=True)
class GeneratedData:
    """Generated training data and what made it.

    Attributes:
        x: Float32 numpy array, the generated samples.
        y: Int64 numpy array, their pseudo-labels (the labeller's most
            probable class, not the class the generator was asked for).
        labeller: The non-robust `keras.Model` that labelled them.
        gan: The `keras_adv.models.GAN` that generated them.
        figures: Dict of the generator's figures on `figure_samples`
            samples, in the labeller's feature space: `frechet_distance`
            (to the test images if given, else to the real training
            images), `coverage`, `min_class_fraction`, `mean_confidence`,
            `class_fractions` (`keras_adv.metrics.class_coverage`),
            `label_agreement` (share of samples the labeller puts in the
            class they were generated for; conditional GANs only) and, with
            test data, `labeller_test_accuracy`.
        seconds: Dict of wall-clock seconds: `labeller` and `gan` (0 for
            a model passed in trained), `generation`.
    """

    x: np.ndarray
    y: np.ndarray
    labeller: keras.Model
    gan: GAN
    figures: dict[str, Any]
    seconds: dict[str, float]

    @property
    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """`(x, y)`, for `robust_fit(generated=...)` or `mix_datasets`."""
        return self.x, self.y


def _default_labeller(
    image_shape: tuple[int, ...], num_classes: int, seed: int
) -> keras.Model:
    if image_shape == (28, 28, 1):
        return mnist_cnn(num_classes=num_classes, seed=seed)
    return small_cnn(image_shape, num_classes=num_classes, seed=seed)


def _train_labeller(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    epochs: int,
    seed: int,
    verbose: int,
) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = _default_labeller(tuple(x.shape[1:]), num_classes, seed)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=_LABELLER_BATCH, epochs=epochs, verbose=verbose)
    return model


def _train_gan(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    epochs: int,
    width: int,
    latent_dim: int,
    batch_size: int,
    seed: int,
    verbose: int,
) -> ConditionalGAN:
    image_shape = tuple(x.shape[1:])
    keras.utils.set_random_seed(seed)
    gan = ConditionalGAN(
        conditional_dcgan_generator(
            latent_dim, num_classes, image_shape, width=width, seed=seed
        ),
        projection_discriminator(
            image_shape, num_classes=num_classes, width=width, seed=seed
        ),
        latent_dim=latent_dim,
        num_classes=num_classes,
        seed=seed,
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(
            _GAN_LEARNING_RATE, beta_1=_GAN_BETA_1
        ),
        g_optimizer=keras.optimizers.Adam(
            _GAN_LEARNING_RATE, beta_1=_GAN_BETA_1
        ),
        loss="hinge",
    )
    gan.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose)
    return gan


def generator_figures(
    gan: GAN,
    labeller: keras.Model,
    reference: np.ndarray,
    num_classes: int,
    num_samples: int = 1000,
) -> dict[str, Any]:
    """Frechet distance, class coverage and label agreement of samples.

    `num_samples` samples (every class in turn for a `ConditionalGAN`),
    judged in `labeller`'s feature space against the `reference` images.
    """
    judge = ClassifierFrechetDistance(labeller, reference)
    if isinstance(gan, ConditionalGAN):
        labels = np.arange(num_samples) % num_classes
        samples = gan.generate(num_samples, labels=labels)
    else:
        labels = None
        samples = gan.generate(num_samples)
    figures = judge.evaluate(samples)
    fractions = figures.pop("class_fractions")
    result: dict[str, Any] = {k: float(v) for k, v in figures.items()}
    result["class_fractions"] = [float(v) for v in fractions]
    if labels is not None:
        probabilities = judge.features_and_probabilities(samples)[1]
        predicted = np.argmax(probabilities, axis=1)
        result["label_agreement"] = float(np.mean(predicted == labels))
    return result


def generate_training_data(
    data: Sequence[ArrayLike],
    num_samples: int = 50_000,
    test_data: Sequence[ArrayLike] | None = None,
    labeller: keras.Model | None = None,
    gan: GAN | None = None,
    confidence: float | None = None,
    labeller_epochs: int = 10,
    gan_epochs: int = 100,
    gan_width: int = 32,
    latent_dim: int = 64,
    gan_batch_size: int = 64,
    figure_samples: int = 1000,
    seed: int = 0,
    verbose: int = 0,
) -> GeneratedData:
    """Generated, pseudo-labelled training data from the real data alone.

    Gowal et al.'s recipe for the data: a generative model trained on the
    training set only, its samples labelled by a non-robust classifier
    trained on the same data (the pseudo-labeller), a fixed set generated
    once and reused. Each model not passed in is trained here:

    * the labeller: `keras_adv.models.mnist_cnn` for 28x28x1 images (else
      `small_cnn`), clean training with Adam 1e-3, batch 64,
      `labeller_epochs` epochs;
    * the GAN: a `keras_adv.models.ConditionalGAN` (conditional DCGAN
      generator of `gan_width`, projection discriminator with spectral
      normalisation, hinge loss, Adam 2e-4 with beta_1 0.5, batch
      `gan_batch_size`, `gan_epochs` epochs), 28x28 or 32x32 images.

    Then `num_samples` samples are drawn, every class in turn, and labelled
    by the labeller (`keras_adv.datasets.make_pseudo_labelled`, optionally
    keeping only those whose top probability reaches `confidence`), and
    the generator is judged on `figure_samples` samples (see
    `GeneratedData.figures`).

    On the 4,000 MNIST images of the embedded subset with the defaults,
    measured on 2 busy CPU cores: the labeller trains in about 20 s, the
    GAN in about 5.5 minutes; the figures are in the docs ("Training on
    generated data").

    Args:
        data: `(x, y)` real training arrays: float images, integer labels.
        num_samples: Int >= 1, generated samples to return. Defaults to
            `50_000`.
        test_data: Optional `(x, y)` real test arrays: the labeller's test
            accuracy, and the reference of the Frechet distance. Defaults
            to `None` (the training images are the reference).
        labeller: Optional trained `keras.Model` classifier; trained here
            if None. Defaults to `None`.
        gan: Optional trained `keras_adv.models.GAN`; a `ConditionalGAN`
            is trained here if None. Defaults to `None`.
        confidence: None or a float in `[0, 1)`, the smallest top-class
            probability of a kept sample. Defaults to `None` (keep all, as
            Gowal et al. do).
        labeller_epochs: Int >= 1. Defaults to `10`.
        gan_epochs: Int >= 1. Defaults to `100` (on the 4,000 MNIST
            images, the Frechet distance of 1,000 samples to the test
            images fell from 128 at 20 epochs and 56 at 40 to 17.5 at 100,
            and rose to 19.1 at 120; the labeller agreed with the
            requested class on 96 %, 65 %, 88 % and 92 % of them).
        gan_width: Int >= 1, filters of the GAN's first layers. Defaults
            to `32`.
        latent_dim: Int >= 1, the GAN's latent size. Defaults to `64`.
        gan_batch_size: Int >= 1. Defaults to `64`.
        figure_samples: Int >= 2, samples that the generator's figures are
            computed on. Defaults to `1000`.
        seed: Int >= 0: Keras' global seed before each training, and the
            draws. Defaults to `0`.
        verbose: Verbosity of the two `fit` calls. Defaults to `0`.

    Returns:
        A `GeneratedData`.

    Raises:
        ValueError: for invalid numbers, malformed data, or images of
            another size than 28x28 or 32x32 with no `gan` given.

    Example:

    >>> import keras_adv
    >>> (x, y), _ = keras_adv.datasets.load_mnist_subset()
    >>> generated = keras_adv.recipes.generate_training_data(
    ...     (x[:256], y[:256]), num_samples=64, labeller_epochs=1,
    ...     gan_epochs=1, gan_width=4, figure_samples=20)
    >>> generated.x.shape, sorted(generated.seconds)
    ((64, 28, 28, 1), ['gan', 'generation', 'labeller'])

    Reference:
        Gowal, Rebuffi, Wiles, Stimberg, Calian and Mann, "Improving
        Robustness using Generated Data", NeurIPS 2021,
        [arXiv:2110.09468](https://arxiv.org/abs/2110.09468). Miyato and
        Koyama, "cGANs with Projection Discriminator", ICLR 2018,
        [arXiv:1802.05637](https://arxiv.org/abs/1802.05637).
    """
    x, y = _check_data("data", data, None)
    num_samples = _validation.check_int("num_samples", num_samples, minimum=1)
    for name, value in (
        ("labeller_epochs", labeller_epochs),
        ("gan_epochs", gan_epochs),
        ("gan_width", gan_width),
        ("latent_dim", latent_dim),
        ("gan_batch_size", gan_batch_size),
    ):
        _validation.check_int(name, value, minimum=1)
    figure_samples = _validation.check_int(
        "figure_samples", figure_samples, minimum=2
    )
    seed = _validation.check_int("seed", seed, minimum=0)
    if labeller is not None and not isinstance(labeller, keras.Model):
        raise TypeError(
            _validation.invalid("labeller", "a keras.Model or None", labeller)
        )
    if gan is not None and not isinstance(gan, GAN):
        raise TypeError(
            _validation.invalid(
                "gan", "a keras_adv.models.GAN or None", type(gan).__name__
            )
        )
    image_shape = tuple(x.shape[1:])
    if gan is None and (
        len(image_shape) != 3 or image_shape[:2] not in _GAN_SIZES
    ):
        raise ValueError(
            _validation.invalid(
                "data",
                "images (height, width, channels) of 28x28 or 32x32 pixels "
                "(the conditional DCGAN's sizes) when no trained `gan` is "
                "given",
                f"samples of shape {image_shape}",
            )
        )
    if test_data is None:
        test = None
    else:
        test = _check_data("test_data", test_data, None)
    num_classes = int(max(y.max(), -1 if test is None else test[1].max())) + 1
    seconds = {}

    start = time.perf_counter()
    if labeller is None:
        labeller = _train_labeller(
            x, y, num_classes, labeller_epochs, seed, verbose
        )
    seconds["labeller"] = time.perf_counter() - start
    start = time.perf_counter()
    if gan is None:
        gan = _train_gan(
            x,
            y,
            num_classes,
            gan_epochs,
            gan_width,
            latent_dim,
            gan_batch_size,
            seed,
            verbose,
        )
    seconds["gan"] = time.perf_counter() - start
    start = time.perf_counter()
    x_gen, y_gen = make_pseudo_labelled(
        gan, labeller, num_samples, confidence=confidence, seed=seed
    )
    seconds["generation"] = time.perf_counter() - start

    reference = x if test is None else test[0]
    figures = generator_figures(
        gan, labeller, reference, num_classes, figure_samples
    )
    if test is not None:
        outputs = labeller.predict(test[0], batch_size=256, verbose=0)
        figures["labeller_test_accuracy"] = float(
            np.mean(np.argmax(outputs, axis=1) == test[1])
        )
    return GeneratedData(
        x=x_gen,
        y=y_gen,
        labeller=labeller,
        gan=gan,
        figures=figures,
        seconds={k: round(v, 1) for k, v in seconds.items()},
    )


def mnist_generated_data_training(
    num_generated: int = 50_000,
    real_fraction: float = 0.3,
    ema_momentum: float | None = 0.999,
    method: str = "trades",
    epochs: int = 20,
    batch_size: int = 16,
    eps: float = 0.3,
    steps: int = 7,
    eps_warmup_epochs: int | None = None,
    generated: GeneratedData | None = None,
    train_samples: int | None = None,
    eval_samples: int = 1000,
    autoattack: bool = True,
    log_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    verbose: int = 0,
    **generation: Any,
) -> TrainingRun:
    """The generated-data recipe on MNIST: data, robust training, AutoAttack.

    Gowal et al.'s pipeline on the 4,000 real images of the embedded MNIST
    subset (offline): `generate_training_data` (a pseudo-labeller and a
    class-conditional GAN trained on the real images only, then
    `num_generated` labelled samples), then `robust_fit` of
    `keras_adv.models.mnist_cnn` with `method` (TRADES, beta 6, PGD-7 at
    eps 0.3: the quality recipe's settings) on batches of exactly
    `round(real_fraction * batch_size)` real images and generated ones for
    the rest, with Keras' optimizer EMA of the weights (the averaged
    weights are the ones evaluated and returned), then
    `evaluate_robustness` with AutoAttack (standard) and PGD-20 at `eps`
    on the first `eval_samples` test images. An epoch is one pass over the
    real images (800 steps of 5 real and 11 generated images with the
    defaults).

    `num_generated=0` trains on the real data alone (with weight averaging
    unless `ema_momentum=None`): the rows of the ablation in the docs
    ("Training on generated data") are calls of this function.

    Args:
        num_generated: Int >= 0, generated samples. Defaults to `50_000`.
        real_fraction: Float in `(0, 1]`, real samples per batch. Defaults
            to `0.3`.
        ema_momentum: Float in `[0, 1)` or None (no weight averaging).
            Defaults to `0.999`.
        method: A `keras_adv.recipes.METHODS` name. Defaults to
            `"trades"`.
        epochs: Int >= 1, passes over the real data. Defaults to `20`.
        batch_size: Int >= 1. Defaults to `16`.
        eps: Float >= 0, the L-inf radius of training and evaluation.
            Defaults to `0.3`.
        steps: Int >= 1, PGD steps of training. Defaults to `7`.
        eps_warmup_epochs: Int >= 0 or None for `epochs // 3`. Defaults to
            `None`.
        generated: Optional `GeneratedData` made before (e.g. by
            `generate_training_data` with the same real images): reused,
            not made again. Defaults to `None`.
        train_samples: Optional int, use the first `train_samples` real
            training images. Defaults to `None` (all 4,000).
        eval_samples: Int >= 1, test images of the evaluation. Defaults to
            `1000`.
        autoattack: Bool, run AutoAttack (standard) besides PGD-20.
            Defaults to `True`.
        log_dir: Optional TensorBoard log directory. Defaults to `None`.
        seed: Int >= 0. Defaults to `0`.
        verbose: Verbosity of the `fit` calls (0, 1 or 2). Defaults to
            `0`.
        **generation: Further arguments of `generate_training_data`
            (`confidence`, `gan_epochs`, `gan_width`, `labeller_epochs`,
            ...).

    Returns:
        A `TrainingRun` with the final `report` (`"autoattack"` and
        `"pgd20"` at 0 and `eps`) and `generated` (None if
        `num_generated=0`).

    Example:

    >>> import keras_adv
    >>> run = keras_adv.recipes.mnist_generated_data_training(
    ...     num_generated=64, epochs=1, steps=1, train_samples=64,
    ...     eval_samples=16, autoattack=False, labeller_epochs=1,
    ...     gan_epochs=1, gan_width=4, figure_samples=20)
    >>> list(run.report.attacks), run.generated.x.shape
    (['pgd20'], (64, 28, 28, 1))

    Reference:
        Gowal et al., "Improving Robustness using Generated Data", NeurIPS
        2021, [arXiv:2110.09468](https://arxiv.org/abs/2110.09468). Gowal,
        Qin, Uesato, Mann and Kohli, "Uncovering the Limits of Adversarial
        Training against Norm-Bounded Adversarial Examples",
        [arXiv:2010.03593](https://arxiv.org/abs/2010.03593).
    """
    num_generated = _validation.check_int(
        "num_generated", num_generated, minimum=0
    )
    eval_samples = _validation.check_int(
        "eval_samples", eval_samples, minimum=1
    )
    autoattack = _validation.check_bool("autoattack", autoattack)
    seed = _validation.check_int("seed", seed, minimum=0)
    if train_samples is not None:
        train_samples = _validation.check_int(
            "train_samples", train_samples, minimum=1
        )
    if generated is not None and not isinstance(generated, GeneratedData):
        raise TypeError(
            _validation.invalid(
                "generated",
                "a keras_adv.recipes.GeneratedData or None",
                type(generated).__name__,
            )
        )
    (x, y), (x_test, y_test) = load_mnist_subset()
    x, y = x[:train_samples], y[:train_samples]
    test = (x_test[:eval_samples], y_test[:eval_samples])
    if generated is None and num_generated:
        generated = generate_training_data(
            (x, y),
            num_generated,
            test_data=test,
            seed=seed,
            verbose=verbose,
            **generation,
        )
    run = robust_fit(
        mnist_cnn(seed=seed),
        (x, y),
        method=method,
        epochs=epochs,
        batch_size=batch_size,
        eps=eps,
        steps=steps,
        eps_warmup_epochs=eps_warmup_epochs,
        monitor=False,
        log_dir=log_dir,
        seed=seed,
        verbose=verbose,
        generated=None if generated is None else generated.data,
        real_fraction=real_fraction,
        ema_momentum=ema_momentum,
    )
    attacks: dict[str, Any] = {}
    if autoattack:
        attacks["autoattack"] = AutoAttack(eps=eps, seed=seed)
    attacks["pgd20"] = PGD(steps=20, seed=seed)
    report = evaluate_robustness(
        run.model,
        test,
        attacks=attacks,
        epsilons=(0.0, eps),
        seed=seed,
        verbose=0,
    )
    return dataclasses.replace(run, report=report, generated=generated)
