"""keras_adv: adversarial robustness plug-ins for Keras 3 (TensorFlow).

Importing `keras_adv` registers every public class for `.keras` loading, so
`keras.saving.load_model(path, safe_mode=True)` works after `import keras_adv`.
"""

from keras_adv._backend import ensure_tensorflow_backend

ensure_tensorflow_backend()

from keras_adv import attacks  # noqa: E402
from keras_adv import callbacks  # noqa: E402
from keras_adv import datasets  # noqa: E402
from keras_adv import evaluation  # noqa: E402
from keras_adv import layers  # noqa: E402
from keras_adv import losses  # noqa: E402
from keras_adv import metrics  # noqa: E402
from keras_adv import models  # noqa: E402
from keras_adv import threat_models  # noqa: E402
from keras_adv import training  # noqa: E402
from keras_adv.version import __version__  # noqa: E402

__all__ = [
    "__version__",
    "attacks",
    "callbacks",
    "datasets",
    "evaluation",
    "layers",
    "losses",
    "metrics",
    "models",
    "threat_models",
    "training",
]
