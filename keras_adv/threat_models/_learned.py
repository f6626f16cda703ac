"""`LearnedPerturbationSet`: a CVAE's latent ball as a threat model.

For a trained `keras_adv.models.PerturbationCVAE` with prior
`N(mu_p(x), sigma_p(x)^2)` and decoder `g`, the set around `x` is

    S(x) = { clip(g(mu_p(x) + sigma_p(x) * u, x)) : ||u||_2 <= radius }.

An adversary moves `u`, not `x`: there is no Euclidean projection of an
input onto `S(x)`, so Lp-ball attacks (PGD, FGSM, ...) do not apply and
`keras_adv.attacks.LatentPGD` searches the latent ball instead. The
operations here mirror the Lp balls' on the latent `u`: `project_latent`,
`random_latent`, `ascent_direction`, `norm_of`; `random_start` returns a
random member and `distance(x, x')` the encoder's estimate of the latent
distance of `x'`.
"""

from typing import Any
from typing import NoReturn
from typing import TypeVar

import keras
from keras import ops

from keras_adv import _random
from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Seed
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange
from keras_adv.threat_models._balls import ThreatModel
from keras_adv.threat_models._balls import _reduce_axes
from keras_adv.threat_models._balls import broadcast_per_sample

_TINY = 1e-12

_T = TypeVar("_T")
_ThreatModelT = TypeVar("_ThreatModelT", bound=ThreatModel)


def _l2_keepdims(u: TensorLike) -> Tensor:
    return ops.sqrt(ops.sum(ops.square(u), axis=_reduce_axes(u), keepdims=True))


def check_instance(
    name: str, value: Any, cls: type[_T], public_name: str
) -> _T:
    """Argument `name` as a `cls`, deserialized first if a config dict.

    Args:
        name: Str, the argument's name in the error message.
        value: A `cls` instance or its serialized config (a dict, as in a
            `get_config` that holds the object).
        cls: The expected class.
        public_name: Str, the class's public path for the error message
            (`"keras_adv.models.PerturbationCVAE"`).

    Raises:
        TypeError: if `value` is (or deserializes to) anything else.
    """
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if not isinstance(value, cls):
        raise TypeError(
            _validation.invalid(name, f"a {public_name}", type(value).__name__)
        )
    return value


#: What a learned set calls on its CVAE (`keras_adv.models.
#: PerturbationCVAE` has them all).
CVAE_METHODS = ("encode_prior", "decode", "latent_distance")


def check_cvae(cvae: Any) -> keras.Model:
    """`cvae` as a trained conditional VAE, deserialised if a config dict.

    Threat models sit below models in the package map, so the check is by
    interface: a `keras.Model` with the methods of `CVAE_METHODS` (a
    `keras_adv.models.PerturbationCVAE`, or a subclass).

    Raises:
        TypeError: for anything else, naming the argument.
    """
    if isinstance(cvae, dict):
        cvae = keras.saving.deserialize_keras_object(cvae)
    if not (
        isinstance(cvae, keras.Model)
        and all(callable(getattr(cvae, m, None)) for m in CVAE_METHODS)
    ):
        raise TypeError(
            _validation.invalid(
                "cvae",
                "a keras_adv.models.PerturbationCVAE",
                type(cvae).__name__,
            )
        )
    return cvae


def check_searchable(
    threat_model: _ThreatModelT, attack: object
) -> _ThreatModelT:
    """Raises unless `attack` can search `threat_model`.

    A learned set has no projection of inputs: only an attack that
    searches its latent space (`searches_latent_space = True`, as
    `keras_adv.attacks.LatentPGD`) can use it. Setting one as the threat
    model of an Lp-ball attack (`pgd.threat_model = learned_set`) would
    otherwise fail later, far from the cause.

    Raises:
        TypeError: naming `threat_model` and pointing to `LatentPGD`.
    """
    if isinstance(threat_model, LearnedPerturbationSet) and not getattr(
        attack, "searches_latent_space", False
    ):
        raise TypeError(
            _validation.invalid(
                "threat_model",
                f"an Lp ball of inputs for {type(attack).__name__} (a "
                "LearnedPerturbationSet is searched in its latent space: "
                "use keras_adv.attacks.LatentPGD(threat_model) instead)",
                threat_model,
            )
        )
    return threat_model


@register
class LearnedPerturbationSet(ThreatModel):
    """The learned set `{g(mu_p + sigma_p * u, x) : ||u||_2 <= radius}`.

    A threat model like `LinfBall`, whose radius lives in the whitened
    latent space of a `PerturbationCVAE` (calibrate it on held-out pairs
    with `keras_adv.evaluation.calibrate_radius`). `eps` is the radius:
    attacks, evaluation sweeps and eps warm-ups read and scale it like an
    Lp radius. Members are clipped to `value_range`.

    `distance(x, x_adv)` is the whitened latent distance that the CVAE's
    encoder assigns to the pair (`PerturbationCVAE.latent_distance`): an
    estimate, so a member at `||u|| = radius` may be measured slightly
    off the radius. The configuration holds the CVAE's architecture, not
    its weights: save the CVAE itself (`cvae.save("set.keras")`) and
    rebuild the set from the loaded model.

    Args:
        cvae: A trained `keras_adv.models.PerturbationCVAE`.
        radius: Float >= 0 (or a variable), the latent radius. Defaults to
            `1.0`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.

    Example:

    >>> import numpy as np, keras_adv
    >>> cvae = keras_adv.models.cvae_mnist_fc(hidden=8, latent_dim=4,
    ...     input_shape=(2, 2, 1))
    >>> tm = keras_adv.threat_models.LearnedPerturbationSet(cvae, radius=2.0)
    >>> u = np.float32([[3.0, 4.0, 0.0, 0.0]])
    >>> np.asarray(tm.project_latent(u))
    array([[1.2, 1.6, 0. , 0. ]], dtype=float32)
    >>> x = np.full((1, 2, 2, 1), 0.5, "float32")
    >>> tuple(tm.random_start(x, seed=0).shape)
    (1, 2, 2, 1)

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450).
    """

    norm = "latent"

    def __init__(
        self,
        cvae: keras.Model | Config,
        radius: Eps = 1.0,
        value_range: ValueRange = (0.0, 1.0),
    ) -> None:
        self.cvae = check_cvae(cvae)
        super().__init__(eps=radius, value_range=value_range)

    @property
    def radius(self) -> Eps:
        """The latent radius (alias of `eps`)."""
        return self.eps

    @radius.setter
    def radius(self, value: Eps) -> None:
        self.eps = value

    # --------------------------------------------------------- the latent
    def prior(self, x: TensorLike) -> tuple[Tensor, Tensor]:
        """`(mu_p(x), sigma_p(x))` of the prior, without gradient."""
        mean, log_var = self.cvae.encode_prior(x)
        return ops.stop_gradient(mean), ops.stop_gradient(
            ops.exp(0.5 * log_var)
        )

    def decode(
        self, x: TensorLike, mean: Tensor, std: Tensor, u: TensorLike
    ) -> Tensor:
        """The member `clip(g(mean + std * u, x))` (float32, graph-safe)."""
        z = mean + std * ops.cast(u, "float32")
        return self.clip(self.cvae.decode(ops.cast(x, "float32"), z))

    def members(self, x: TensorLike, u: TensorLike) -> Tensor:
        """Members of `S(x)` for latent offsets `u` (any norm)."""
        mean, std = self.prior(x)
        return self.decode(x, mean, std, u)

    def latent_radius(self, u: TensorLike, eps: Eps | None = None) -> Tensor:
        """The radius in use, broadcastable to the latent `u`."""
        eps = self._eps if eps is None else eps
        return broadcast_per_sample(eps, u)

    def project_latent(self, u: TensorLike, eps: Eps | None = None) -> Tensor:
        """Rescales `u` to L2 norm `min(||u||_2, radius)` per sample."""
        u = ops.cast(u, "float32")
        radius = self.latent_radius(u, eps)
        factor = ops.minimum(1.0, radius / ops.maximum(_l2_keepdims(u), _TINY))
        return u * factor

    def random_latent(
        self, mean: TensorLike, seed: Seed | None = None, eps: Eps | None = None
    ) -> Tensor:
        """A random direction scaled to a uniform length in `[0, radius]`.

        Args:
            mean: The prior mean (gives the latent shape).
            seed: `SeedGenerator`, int or `(2,)` stateless seed tensor.
            eps: Optional radius override.
        """
        seed = 0 if seed is None else seed
        seed_dir, seed_len = _random.split_seed(seed)
        direction = _random.random_normal(ops.shape(mean), seed_dir)
        direction = direction / ops.maximum(_l2_keepdims(direction), _TINY)
        batch_shape = [ops.shape(mean)[0]] + [1] * (len(mean.shape) - 1)
        length = _random.random_uniform(batch_shape, seed_len)
        return direction * length * self.latent_radius(mean, eps)

    def random_start(
        self, x: TensorLike, seed: Seed | None = None, eps: Eps | None = None
    ) -> Tensor:
        """A random member of `S(x)` (see `random_latent`)."""
        mean, std = self.prior(x)
        u = self.random_latent(mean, seed=seed, eps=eps)
        return self.decode(x, mean, std, u)

    def ascent_direction(self, grad: TensorLike) -> Tensor:
        """`grad / ||grad||_2` per sample: the steepest step in `u`."""
        return grad / ops.maximum(_l2_keepdims(grad), _TINY)

    def norm_of(self, u: TensorLike) -> Tensor:
        """Per-sample L2 norm of a latent offset, shape `(batch,)`."""
        return ops.reshape(_l2_keepdims(ops.cast(u, "float32")), [-1])

    def distance(self, x: TensorLike, x_adv: TensorLike) -> Tensor:
        """The encoder's whitened latent distance of `x_adv`, `(batch,)`."""
        return ops.stop_gradient(
            self.cvae.latent_distance(
                ops.cast(x, "float32"), ops.cast(x_adv, "float32")
            )
        )

    def project(
        self, x_adv: TensorLike, x: TensorLike, eps: Eps | None = None
    ) -> NoReturn:
        raise NotImplementedError(
            "A LearnedPerturbationSet has no projection of inputs: its "
            "members are decoded from latent offsets u. Search u with "
            "keras_adv.attacks.LatentPGD (Lp-ball attacks such as PGD or "
            "FGSM do not apply), or use members(x, u) and project_latent(u)."
        )

    # -------------------------------------------------------------- config
    def get_config(self) -> Config:
        config = super().get_config()
        return {
            "cvae": keras.saving.serialize_keras_object(self.cvae),
            "radius": config["eps"],
            "value_range": config["value_range"],
        }

    def __repr__(self) -> str:
        return (
            f"LearnedPerturbationSet(cvae={self.cvae.name!r}, "
            f"radius={super().get_config()['eps']}, "
            f"value_range={tuple(self.value_range)})"
        )
