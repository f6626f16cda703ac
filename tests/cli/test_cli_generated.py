"""`keras-adv train --generated N --ema M`: the generated-data recipe on the
command line (in-process, through `keras_adv.cli.main`)."""

import keras
import numpy as np
import pytest

from keras_adv import cli


def test_train_on_generated_data_with_weight_averaging(capsys, tmp_path):
    path = tmp_path / "generated.keras"
    code = cli.main(
        ["train", str(path), "--method", "clean", "--epochs", "1"]
        + ["--max-samples", "64", "--batch-size", "10", "-q"]
        + ["--generated", "40", "--gan-epochs", "1", "--ema", "0.9"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Generating 40 images" in out
    assert "Frechet distance" in out
    assert "30% real images per batch, weight averaging 0.9" in out
    model = keras.saving.load_model(path)
    assert model.output_shape == (None, 10)
    assert np.all(np.isfinite(model.get_weights()[0]))


@pytest.mark.parametrize(
    "options, message",
    [
        (["--real-fraction", "0.5"], "--real-fraction: options of --generated"),
        (["--gan-epochs", "3"], "--gan-epochs: options of --generated"),
        (["--generated", "8", "--real-fraction", "0"], "(0, 1]"),
        (["--generated", "8", "--real-fraction", "1.5"], "(0, 1]"),
        (["--ema", "1"], "[0, 1)"),
        (["--ema", "x"], "[0, 1)"),
    ],
)
def test_bad_generated_options_are_usage_errors(
    capsys, tmp_path, options, message
):
    with pytest.raises(SystemExit) as raised:
        cli.main(["train", str(tmp_path / "m.keras"), *options])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
