"""`CallbackChecks`: a callback leaves nothing behind, a mixin of `TestCase`."""

from collections.abc import Callable
from collections.abc import Sequence

import keras
import numpy as np

from keras_adv.testing.serialization import run_model_saving_test

#: What the `AdversarialTraining` installation puts in a model's `__dict__`.
INSTALLED_NAMES = (
    "train_step",
    "compute_loss",
    "compute_metrics",
    "make_train_function",
)


class CallbackChecks:
    """Mixin with `run_callback_test`."""

    def run_callback_test(
        self,
        callback_factory: Callable[[], keras.callbacks.Callback],
        model_factory: Callable[[], keras.Model],
        data: Sequence[np.ndarray],
        epochs: int = 1,
        batch_size: int = 32,
        atol: float = 1e-6,
    ) -> tuple[keras.Model, keras.callbacks.Callback]:
        """Checks that a callback leaves its model as a plain model.

        Fits `model_factory()` on `data` with `callback_factory()`, then:

        * nothing among `INSTALLED_NAMES` is left in the model's instance
          `__dict__`;
        * the model saves as `.keras` and loads with `safe_mode=True`
          (`run_model_saving_test`);
        * a plain later `fit` (no callback) gives the weights of a fresh
          `model_factory()` twin given the same weights and the same fit.

        The twin's optimizer starts fresh: compile in `model_factory` with
        a stateless optimizer (plain SGD) so that only the weights carry
        over.

        Args:
            callback_factory: Callable returning a new callback.
            model_factory: Callable returning a new compiled model.
            data: `(x, y)` arrays.
            epochs: Int, epochs of the fit with the callback. Defaults
                to `1`.
            batch_size: Int. Defaults to `32`.
            atol: Float, tolerance on the weights. Defaults to `1e-6`.

        Returns:
            `(model, callback)` after the checks.
        """
        x, y = data
        fit_kwargs = dict(batch_size=batch_size, shuffle=False, verbose=0)
        model = model_factory()
        callback = callback_factory()
        model.fit(x, y, epochs=epochs, callbacks=[callback], **fit_kwargs)
        name = type(callback).__name__
        left = [n for n in INSTALLED_NAMES if n in vars(model)]
        if left:
            raise AssertionError(
                f"{name} left {left} in the model's instance __dict__ after fit"
            )
        run_model_saving_test(model, x[:batch_size])
        twin = model_factory()
        twin.set_weights(model.get_weights())
        model.fit(x, y, epochs=1, **fit_kwargs)
        twin.fit(x, y, epochs=1, **fit_kwargs)
        for i, (a, b) in enumerate(
            zip(model.get_weights(), twin.get_weights())
        ):
            np.testing.assert_allclose(
                a,
                b,
                atol=atol,
                rtol=0,
                err_msg=f"after {name}, a plain fit differs from a clean "
                f"twin's (weight {i})",
            )
        return model, callback
