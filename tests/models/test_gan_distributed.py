"""GAN under tf.distribute.MirroredStrategy (2 CPU devices, subprocess).

Logical devices must be configured before TensorFlow initialises, so the
run happens in a subprocess.
"""

import _two_cpus
import numpy as np

SCRIPT = r"""
import json
import tensorflow as tf
import keras
import numpy as np

from keras_adv.models import SoftmaxGAN

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    g = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    d = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(1, kernel_initializer="zeros")]
    )
    gan = SoftmaxGAN(g, d, 3, seed=0)
    # D frozen at zero logits (learning rate 0): every D loss is the log of
    # the batch size the loss sees.
    gan.compile(
        d_optimizer=keras.optimizers.SGD(0.0),
        g_optimizer=keras.optimizers.SGD(0.1),
    )
x = np.random.default_rng(0).normal(size=(128, 5)).astype("float32")
history = gan.fit(x, batch_size=32, epochs=2, verbose=0)
out = {k: [float(v) for v in vs] for k, vs in history.history.items()}
out["replicas"] = strategy.num_replicas_in_sync
out["iterations"] = int(gan.d_optimizer.iterations.numpy())
print("RESULT" + json.dumps(out))
"""


def test_softmax_gan_under_mirrored_strategy_is_per_replica():
    out = _two_cpus.run(SCRIPT)
    assert out["replicas"] == 2
    assert out["iterations"] == 8  # 4 global steps per epoch, 2 epochs
    # Each replica sees 16 real + 16 generated samples: log 32, not the
    # global batch's log 64.
    np.testing.assert_allclose(out["d_loss"], np.log(32.0), rtol=1e-5)
    np.testing.assert_allclose(out["g_loss"], np.log(32.0), rtol=1e-5)
