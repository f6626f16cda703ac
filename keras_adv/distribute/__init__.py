"""keras_adv.distribute: Keras' own `fit` on several machines.

`fit_multi_worker(model, dataset, ...)` runs `model.fit` under
`tf.distribute.MultiWorkerMirroredStrategy` (one process per worker, each
with its `TF_CONFIG`), with the model's own `train_step`, Keras' loss
scaling and metrics, and the same callbacks as on one machine
(`AdversarialTraining` included); it makes
`keras.callbacks.BackupAndRestore` write from the chief only and resume a
restarted run at the step of its backup. `multi_worker_support(model)`
is the same model adapter as a context manager (for `fit` and
`evaluate`); `shard_by_data` sets the `DATA` auto-shard policy that gives
every worker its slice of each global batch.
"""

from keras_adv import _api
from keras_adv.distribute._multi_worker import fit_multi_worker
from keras_adv.distribute._multi_worker import multi_worker_support
from keras_adv.distribute._multi_worker import shard_by_data

__all__ = [
    "fit_multi_worker",
    "multi_worker_support",
    "shard_by_data",
]

# Helpers that were public before 0.2 (see CHANGELOG.md): still importable
# from here, with a DeprecationWarning.
_DEPRECATED = {
    "is_multi_worker": (
        "keras_adv.distribute._multi_worker",
        "is_multi_worker",
    ),
}

__getattr__ = _api.deprecated_names(__name__, _DEPRECATED)
