"""Fréchet distance between feature distributions (FID-style).

The quality of generated images is measured as the Fréchet distance between
two Gaussians fitted to features of real and of generated images. FID uses
an Inception network; on small datasets such as MNIST the features of a
classifier trained on the data serve the same purpose (the reference
values are then specific to that classifier). Evaluation runs eagerly,
in float64 numpy, once per epoch at most: it is not a per-batch metric.
"""

from typing import Any

import keras
import numpy as np

from keras_adv import _validation
from keras_adv._types import Array
from keras_adv.metrics._coverage import class_coverage


def feature_statistics(features: Array) -> tuple[np.ndarray, np.ndarray]:
    """Returns the mean `(d,)` and covariance `(d, d)` of `features`.

    Args:
        features: Array `(n, d)` with `n >= 2`.

    Returns:
        Tuple `(mean, covariance)` of float64 arrays (unbiased covariance).

    Example:

    >>> import numpy as np
    >>> from keras_adv.metrics._frechet import feature_statistics
    >>> mu, sigma = feature_statistics(np.array([[0.0], [2.0]]))
    >>> float(mu[0]), float(sigma[0, 0])
    (1.0, 2.0)
    """
    features = np.asarray(features, dtype="float64")
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            _validation.invalid(
                "features", "an array of shape (n >= 2, d)", features.shape
            )
        )
    covariance = np.atleast_2d(np.cov(features, rowvar=False, ddof=1))
    return features.mean(axis=0), covariance


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance_from_statistics(
    mu1: Array, sigma1: Array, mu2: Array, sigma2: Array
) -> float:
    """Fréchet (2-Wasserstein) distance between two Gaussians, squared.

    `d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)`.

    The trace of the matrix square root is computed from the eigenvalues of
    the symmetric positive semi-definite `S1^1/2 S2 S1^1/2`, which is exact
    and needs no SciPy.

    Args:
        mu1: Mean `(d,)` of the first distribution.
        sigma1: Covariance `(d, d)` of the first distribution.
        mu2: Mean `(d,)` of the second distribution.
        sigma2: Covariance `(d, d)` of the second distribution.

    Returns:
        Python float >= 0.

    Example:

    >>> import numpy as np
    >>> from keras_adv.metrics._frechet import frechet_distance_from_statistics
    >>> round(frechet_distance_from_statistics(
    ...     np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)), 6)
    4.0

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to
        a Local Nash Equilibrium",
        [arXiv:1706.08500](https://arxiv.org/abs/1706.08500), 2017.
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, "float64")) for m in (mu1, mu2))
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(s, "float64")) for s in (sigma1, sigma2)
    )
    d = mu1.shape[0]
    for name, value, shape in (
        ("mu2", mu2, (d,)),
        ("sigma1", sigma1, (d, d)),
        ("sigma2", sigma2, (d, d)),
    ):
        if value.shape != shape:
            raise ValueError(
                _validation.invalid(name, f"shape {shape}", value.shape)
            )
    root1 = _psd_sqrt(sigma1)
    inner = root1 @ sigma2 @ root1
    values = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    trace_sqrt = np.sum(np.sqrt(np.clip(values, 0.0, None)))
    distance = (
        np.sum((mu1 - mu2) ** 2)
        + np.trace(sigma1)
        + np.trace(sigma2)
        - 2.0 * trace_sqrt
    )
    return float(max(distance, 0.0))


def frechet_distance(features1: Array, features2: Array) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    Args:
        features1: Array `(n1, d)`.
        features2: Array `(n2, d)`.

    Returns:
        Python float >= 0 (the squared distance, as FID reports it).

    Example:

    >>> import numpy as np
    >>> from keras_adv.metrics import frechet_distance
    >>> a = np.random.default_rng(0).normal(size=(500, 3))
    >>> round(frechet_distance(a, a), 6)
    0.0

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to
        a Local Nash Equilibrium",
        [arXiv:1706.08500](https://arxiv.org/abs/1706.08500), 2017.
    """
    return frechet_distance_from_statistics(
        *feature_statistics(features1), *feature_statistics(features2)
    )


def feature_extractor(
    classifier: keras.Model, layer: str | int | None = None
) -> keras.Model:
    """Returns a model mapping inputs to an inner layer of `classifier`.

    Args:
        classifier: A built Sequential or Functional Keras model.
        layer: Name or index of the layer whose output are the features.
            Defaults to the penultimate layer (the input of the classifier
            head).

    Returns:
        A `keras.Model` `inputs -> features`, flattened to `(batch, d)`.

    Raises:
        ValueError: if the classifier has no symbolic inputs or the layer
            does not exist.
    """
    inputs = getattr(classifier, "inputs", None)
    if not inputs:
        raise ValueError(
            _validation.invalid(
                "classifier",
                "a built Sequential or Functional model",
                classifier,
            )
        )
    if layer is None:
        if len(classifier.layers) < 2:
            raise ValueError(
                _validation.invalid(
                    "classifier", "a model with >= 2 layers", classifier
                )
            )
        target = classifier.layers[-2]
    elif isinstance(layer, int):
        target = classifier.layers[layer]
    else:
        try:
            target = classifier.get_layer(layer)
        except ValueError:
            raise ValueError(
                _validation.invalid("layer", "a layer name", layer)
            ) from None
    if len(inputs) == 1:
        inputs = inputs[0]
    outputs = target.output
    if len(outputs.shape) != 2:
        # Named after the target: an automatic name could clash with the
        # classifier's own layers (e.g. "flatten" after loading).
        flatten = keras.layers.Flatten(name=f"{target.name}_flat_features")
        outputs = flatten(outputs)
    return keras.Model(inputs, outputs, name=f"{classifier.name}_features")


class ClassifierFrechetDistance:
    """Fréchet distance and class coverage in a classifier's feature space.

    Fits a Gaussian once to the classifier features of the real data, then
    measures generated samples against it; the same forward pass gives the
    class predictions for `class_coverage`.

    Args:
        classifier: A built Sequential or Functional classifier (logits or
            probabilities).
        real_data: Optional array of real samples (the reference set);
            without it only the coverage figures are computed.
        layer: Name or index of the feature layer. Defaults to the
            penultimate layer.
        batch_size: Int, batch size of the feature pass. Defaults to `256`.

    Example:

    ```python
    fd = ClassifierFrechetDistance(classifier, x_test)
    fd(generated_images)  # float; about 0 for the real distribution
    fd.evaluate(generated_images)  # dict with coverage figures too
    ```

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to
        a Local Nash Equilibrium",
        [arXiv:1706.08500](https://arxiv.org/abs/1706.08500), 2017.
    """

    real_mean: np.ndarray | None
    real_cov: np.ndarray | None

    def __init__(
        self,
        classifier: keras.Model,
        real_data: Array | None = None,
        layer: str | int | None = None,
        batch_size: int = 256,
    ) -> None:
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        features = feature_extractor(classifier, layer)
        self._model = keras.Model(
            features.input,
            [features.outputs[0], classifier.outputs[0]],
            name=f"{classifier.name}_features_and_outputs",
        )
        self.real_mean = self.real_cov = None
        if real_data is not None:
            self.real_mean, self.real_cov = feature_statistics(
                self.features_and_probabilities(real_data)[0]
            )

    def features_and_probabilities(
        self, x: Array
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns `(features (n, d), class probabilities (n, classes))`."""
        feat_batches, prob_batches = [], []
        for i in range(0, len(x), self.batch_size):
            f, p = self._model(x[i : i + self.batch_size], training=False)
            feat_batches.append(keras.ops.convert_to_numpy(f))
            prob_batches.append(keras.ops.convert_to_numpy(p))
        feats = np.concatenate(feat_batches, axis=0).astype("float64")
        probs = np.concatenate(prob_batches, axis=0).astype("float64")
        is_prob = np.all(probs >= 0) and np.allclose(probs.sum(axis=1), 1.0)
        if not is_prob:  # logits
            probs = np.exp(probs - probs.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
        return feats, probs

    def evaluate(self, generated: Array) -> dict[str, Any]:
        """Returns a dict: `frechet_distance` (if real data was given) and
        the `class_coverage` figures (`coverage`, `min_class_fraction`,
        `mean_confidence`, `class_fractions`)."""
        feats, probs = self.features_and_probabilities(generated)
        results = class_coverage(probs)
        if self.real_mean is not None:
            mu, sigma = feature_statistics(feats)
            results["frechet_distance"] = frechet_distance_from_statistics(
                self.real_mean, self.real_cov, mu, sigma
            )
        return results

    def __call__(self, generated: Array) -> float:
        """Returns the Fréchet distance of `generated` to the real data."""
        if self.real_mean is None:
            raise ValueError(
                _validation.invalid(
                    "real_data", "real samples (given at construction)", None
                )
            )
        mu, sigma = feature_statistics(
            self.features_and_probabilities(generated)[0]
        )
        return frechet_distance_from_statistics(
            self.real_mean, self.real_cov, mu, sigma
        )
