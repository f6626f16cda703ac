"""keras_adv's AutoAttack against the reference AutoAttack (PyTorch).

The same model, the same 1,000 test images of the embedded MNIST subset,
L-inf eps 0.3, version "standard", seed 0, batches of 500. Two steps in two
virtual environments (TensorFlow in `.venv`, PyTorch in `.venv-reference`,
see `requirements/reference.txt` and bench/README.md):

    # 1. TensorFlow venv: load (or train) the model, save weights + data,
    #    run keras_adv's AutoAttack, save its per-sample results.
    .venv/bin/python bench/reference_autoattack.py keras \
        --model pgd7.keras --out aa_compare.npz
    # 2. reference venv: rebuild the model in torch, check the logits,
    #    run the reference AutoAttack, compare sample by sample.
    .venv-reference/bin/python bench/reference_autoattack.py reference \
        --out aa_compare.npz

Step 1 trains the PGD-7 quality recipe's CNN
(`keras_adv.recipes.mnist_adversarial_training(method="pgd")`: batch 16,
20 epochs, eps 0.3, seed 0) and saves it to `--model` if that file does
not exist. Step 2 builds the equivalent `torch.nn.Module` (Keras conv
kernels are HWIO, torch's OIHW; Keras flattens NHWC, torch NCHW, so the
first dense kernel's rows are permuted), asserts that the logits agree to
1e-4 on the test images, runs `pyautoattack.AutoAttack` (the packaging of
fra31/auto-attack) and prints both reports and their per-sample agreement.

Both sides count the rows that go through the model: forward-only passes
and forward passes that are back-propagated (one forward + one backward).
keras_adv's count comes from an identity layer in front of the model whose
forward and gradient add to two variables (negligible cost); the
reference's from a wrapper module (a forward under `torch.enable_grad` on
an input that requires grad counts as forward+backward). Each side is
timed around its attack loop alone.
"""

import argparse
import json
import logging
import os
import platform
import sys
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STAGES = ("apgd-ce", "apgd-t", "fab-t", "square")
EPS = 0.3
SEED = 0


# ----------------------------------------------------------------- keras
def _architecture(model):
    """The layer list of a Sequential CNN as JSON-friendly dicts."""
    import keras

    spec = []
    for layer in model.layers:
        config = layer.get_config()
        act = config.get("activation", "linear")
        if isinstance(layer, keras.layers.Conv2D):
            if tuple(config["strides"]) != (1, 1) or config.get(
                "dilation_rate", (1, 1)
            ) not in ((1, 1), [1, 1]):
                raise ValueError(f"unsupported conv settings: {config}")
            spec.append(
                {
                    "type": "conv",
                    "filters": config["filters"],
                    "kernel": list(config["kernel_size"]),
                    "padding": config["padding"],
                    "activation": act,
                }
            )
        elif isinstance(layer, keras.layers.MaxPooling2D):
            spec.append({"type": "maxpool", "pool": list(config["pool_size"])})
        elif isinstance(layer, keras.layers.Flatten):
            spec.append({"type": "flatten"})
        elif isinstance(layer, keras.layers.Dense):
            spec.append(
                {"type": "dense", "units": config["units"], "activation": act}
            )
        else:
            raise ValueError(f"unsupported layer {type(layer).__name__}")
        if act not in ("relu", "linear"):
            raise ValueError(f"unsupported activation {act!r}")
    return spec


def _load_or_train(path):
    import keras

    import keras_adv

    if os.path.exists(path):
        return keras.saving.load_model(path), None
    start = time.perf_counter()
    run = keras_adv.recipes.mnist_adversarial_training(
        method="pgd", monitor=False, eval_samples=0, seed=SEED
    )
    seconds = time.perf_counter() - start
    run.model.save(path)
    return run.model, seconds


def _counting_model(model):
    """`model` behind an identity layer that counts forward/backward rows."""
    import keras
    import tensorflow as tf

    class PassCounter(keras.layers.Layer):
        def build(self, input_shape):
            self.forward = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="fwd"
            )
            self.backward = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="bwd"
            )

        def call(self, x):
            rows = tf.cast(tf.shape(x)[0], "float32")

            @tf.custom_gradient
            def identity(t):
                def grad(upstream):
                    with tf.control_dependencies(
                        [self.backward.assign_add(rows)]
                    ):
                        return tf.identity(upstream)

                return tf.identity(t), grad

            with tf.control_dependencies([self.forward.assign_add(rows)]):
                return identity(x)

    inputs = keras.Input(model.input_shape[1:])
    counter = PassCounter()
    wrapped = keras.Model(inputs, model(counter(inputs)))
    return wrapped, counter


def run_keras(args):
    import keras
    import tensorflow as tf

    import keras_adv

    model, train_seconds = _load_or_train(args.model)
    (_, _), (x, y) = keras_adv.datasets.load_mnist_subset()
    x, y = x[: args.limit], y[: args.limit].astype("int64")
    logits = np.asarray(model.predict(x, batch_size=500, verbose=0))
    clean = logits.argmax(1) == y
    print(f"model {args.model}: clean accuracy {100 * clean.mean():.2f}%")

    counted, counter = _counting_model(model)

    @tf.function(reduce_retracing=True)
    def predict(batch):
        return counted(batch, training=False)

    attack = keras_adv.attacks.AutoAttack(
        eps=EPS, norm="linf", version="standard", seed=SEED
    )
    # AutoAttack.evaluate's loop, with a snapshot of the per-sample flags
    # and of the pass counters after each attack.
    robust = clean.copy()
    fell = np.where(clean, -1, 0)  # stage (1-based) at which a sample fell
    seconds, passes, after = {}, {}, {}
    total = time.perf_counter()
    for stage, (name, component) in enumerate(attack.components, start=1):
        begin = time.perf_counter()
        f0, b0 = float(counter.forward.numpy()), float(counter.backward.numpy())
        index = np.flatnonzero(robust)
        for lo in range(0, len(index), args.batch):
            part = index[lo : lo + args.batch]
            adv = np.asarray(component(counted, x[part], y[part]))
            fooled = np.asarray(predict(adv)).argmax(1) != y[part]
            robust[part[fooled]] = False
            fell[part[fooled]] = stage
        seconds[name] = time.perf_counter() - begin
        fwd = float(counter.forward.numpy()) - f0
        bwd = float(counter.backward.numpy()) - b0
        passes[name] = {"forward_only": fwd - bwd, "forward_backward": bwd}
        after[name] = float(robust.mean())
        print(
            f"keras_adv {name}: robust {100 * robust.mean():.2f}% "
            f"({seconds[name]:.1f} s)",
            flush=True,
        )
    total = time.perf_counter() - total
    weights = [np.asarray(w) for w in model.get_weights()]
    meta = {
        "model": os.path.basename(args.model),
        "train_seconds": train_seconds,
        "architecture": _architecture(model),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_adv": getattr(keras_adv, "__version__", "dev"),
            "python": platform.python_version(),
        },
        "batch": args.batch,
        "clean_accuracy": float(clean.mean()),
        "robust_after": after,
        "seconds": seconds,
        "total_seconds": total,
        "passes": passes,
    }
    np.savez(
        args.out,
        x=x,
        y=y,
        logits=logits,
        ours_fell=fell,
        meta=json.dumps(meta),
        **{f"w{i}": w for i, w in enumerate(weights)},
    )
    print(f"saved {args.out}")


# ----------------------------------------------------------------- torch
def nchw_dense_kernel(kernel, channels):
    """A dense kernel after a Keras (H, W, C) flatten, for a (C, H, W) one.

    Row `h * W * C + w * C + c` of `kernel` becomes row `c * H * W + h * W +
    w`, so `flatten_chw(f) @ result == flatten_hwc(f) @ kernel` for a
    square feature map `f` with `channels` channels.
    """
    hw = kernel.shape[0] // channels
    side = int(round(hw**0.5))
    if side * side * channels != kernel.shape[0]:
        raise ValueError(f"not a square map of {channels} channels")
    return (
        kernel.reshape(side, side, channels, -1)
        .transpose(2, 0, 1, 3)
        .reshape(kernel.shape[0], -1)
    )


def _torch_model(spec, weights, in_channels):
    import torch
    from torch import nn

    layers, k, channels, flat_hwc = [], 0, in_channels, None
    for item in spec:
        if item["type"] == "conv":
            kh, kw = item["kernel"]
            if item["padding"] == "same":
                if kh % 2 == 0 or kw % 2 == 0:
                    raise ValueError("'same' padding needs odd kernels here")
                pad = (kh // 2, kw // 2)
            else:
                pad = (0, 0)
            conv = nn.Conv2d(channels, item["filters"], (kh, kw), padding=pad)
            conv.weight.data = torch.from_numpy(
                np.ascontiguousarray(weights[k].transpose(3, 2, 0, 1))
            )
            conv.bias.data = torch.from_numpy(weights[k + 1].copy())
            k += 2
            layers.append(conv)
            channels = item["filters"]
            if item["activation"] == "relu":
                layers.append(nn.ReLU())
        elif item["type"] == "maxpool":
            layers.append(nn.MaxPool2d(tuple(item["pool"])))
        elif item["type"] == "flatten":
            layers.append(nn.Flatten())
            flat_hwc = channels
        else:
            kernel = weights[k]  # (inputs, units)
            if flat_hwc is not None:
                kernel = nchw_dense_kernel(kernel, flat_hwc)
                flat_hwc = None
            dense = nn.Linear(kernel.shape[0], kernel.shape[1])
            dense.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.T))
            dense.bias.data = torch.from_numpy(weights[k + 1].copy())
            k += 2
            layers.append(dense)
            if item["activation"] == "relu":
                layers.append(nn.ReLU())
    if k != len(weights):
        raise ValueError(f"used {k} of {len(weights)} weight arrays")
    return nn.Sequential(*layers)


def run_reference(args):
    import pyautoattack
    import torch
    from pyautoattack import state as aa_state
    from torch import nn

    data = np.load(args.out)
    meta = json.loads(str(data["meta"]))
    weights = [data[f"w{i}"] for i in range(len(data.files)) if f"w{i}" in data]
    x = torch.from_numpy(np.ascontiguousarray(data["x"].transpose(0, 3, 1, 2)))
    y = torch.from_numpy(data["y"])
    net = _torch_model(meta["architecture"], weights, x.shape[1]).eval()

    with torch.no_grad():
        logits = torch.cat([net(x[i : i + 500]) for i in range(0, len(x), 500)])
    diff = float(np.abs(logits.numpy() - data["logits"]).max())
    print(f"max |logits torch - logits keras| = {diff:.2e}")
    if not diff < 1e-4:
        sys.exit(f"the torch model differs from the Keras model ({diff})")

    class Counting(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.forward_only = 0
            self.forward_backward = 0

        def forward(self, t):
            if torch.is_grad_enabled() and t.requires_grad:
                self.forward_backward += t.shape[0]
            else:
                self.forward_only += t.shape[0]
            return self.inner(t)

    counted = Counting(net).eval()
    # Per attack: the reference logs "running <attack>" when it starts one
    # and calls EvaluationState.add_run_attack when it is done; the state
    # then holds the per-sample flags. Both are observed, nothing changed.
    marks = {}

    def mark():
        return (
            time.perf_counter(),
            counted.forward_only,
            counted.forward_backward,
        )

    class Starts(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if message.startswith("running "):
                marks[message.split()[1]] = mark()

    snapshots = []
    original_add = aa_state.EvaluationState.add_run_attack

    def add_run_attack(self, attack):
        snapshots.append((attack, self.robust_flags.clone().numpy(), mark()))
        return original_add(self, attack)

    logger = logging.getLogger("auto-attack")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Starts())
    aa_state.EvaluationState.add_run_attack = add_run_attack
    try:
        adversary = pyautoattack.AutoAttack(
            counted,
            norm="Linf",
            eps=EPS,
            version="standard",
            seed=SEED,
            device="cpu",
        )
        start = time.perf_counter()
        x_adv, _ = adversary.run_standard_evaluation(
            x, y, batch_size=args.batch
        )
        call_seconds = time.perf_counter() - start
    finally:
        aa_state.EvaluationState.add_run_attack = original_add

    with torch.no_grad():
        final = torch.cat(
            [net(x_adv[i : i + 500]) for i in range(0, len(x), 500)]
        )
    clean = logits.argmax(1).numpy() == data["y"]
    fell = np.where(clean, -1, 0)
    robust_prev = clean
    ref = {"robust_after": {}, "seconds": {}, "passes": {}}
    for stage, (name, flags, (now, f, b)) in enumerate(snapshots, start=1):
        fell[robust_prev & ~flags] = stage
        robust_prev = flags
        t0, f0, b0 = marks[name]
        ref["robust_after"][name] = float(flags.mean())
        ref["seconds"][name] = now - t0
        ref["passes"][name] = {
            "forward_only": f - f0,
            "forward_backward": b - b0,
        }
    ref["total_seconds"] = sum(ref["seconds"].values())
    ref["call_seconds"] = call_seconds
    ref["clean_accuracy"] = float(clean.mean())
    ref["robust_accuracy"] = float(robust_prev.mean())
    ref["robust_check"] = float((final.argmax(1).numpy() == data["y"]).mean())
    ref["fell"] = fell.tolist()
    _report(meta, data["ours_fell"], ref, fell, torch, pyautoattack, diff)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"keras_adv": meta, "reference": ref}, f, indent=1)


def _report(meta, ours_fell, ref, ref_fell, torch, pyautoattack, diff):
    n = len(ours_fell)
    lines = [
        f"AutoAttack standard, L-inf eps {EPS}, seed {SEED}, {n} test "
        f"images, batch {meta['batch']}; model {meta['model']}; "
        f"max logit difference {diff:.1e}",
        "",
        "| after | keras_adv | reference | robust in one only (ours / ref) |",
        "|---|---|---|---|",
    ]
    ours_clean = meta["clean_accuracy"]
    lines.append(
        f"| clean | {100 * ours_clean:.1f}% | "
        f"{100 * ref['clean_accuracy']:.1f}% | |"
    )
    for stage, name in enumerate(STAGES, start=1):
        ours_rob = (ours_fell == -1) | (ours_fell > stage)
        ref_rob = (ref_fell == -1) | (ref_fell > stage)
        lines.append(
            f"| {name} | {100 * ours_rob.mean():.1f}% | "
            f"{100 * ref_rob.mean():.1f}% | "
            f"{int((ours_rob & ~ref_rob).sum())} / "
            f"{int((ref_rob & ~ours_rob).sum())} |"
        )
    lines += [
        "",
        "| attack | keras_adv s | reference s | keras_adv passes/sample "
        "(fwd+bwd, fwd only) | reference passes/sample (fwd+bwd, fwd only) |",
        "|---|---|---|---|---|",
    ]
    tot = {"ours": [0.0, 0.0], "ref": [0.0, 0.0]}
    for name in STAGES:
        po, pr = meta["passes"][name], ref["passes"][name]
        tot["ours"][0] += po["forward_backward"]
        tot["ours"][1] += po["forward_only"]
        tot["ref"][0] += pr["forward_backward"]
        tot["ref"][1] += pr["forward_only"]
        lines.append(
            f"| {name} | {meta['seconds'][name]:.1f} | "
            f"{ref['seconds'][name]:.1f} | "
            f"{po['forward_backward'] / n:.0f}, {po['forward_only'] / n:.0f} | "
            f"{pr['forward_backward'] / n:.0f}, {pr['forward_only'] / n:.0f} |"
        )
    lines.append(
        f"| total | {meta['total_seconds']:.1f} | {ref['total_seconds']:.1f} "
        f"| {tot['ours'][0] / n:.0f}, {tot['ours'][1] / n:.0f} "
        f"| {tot['ref'][0] / n:.0f}, {tot['ref'][1] / n:.0f} |"
    )
    both = (ours_fell == -1) & (ref_fell == -1)
    lines += [
        "",
        f"robust accuracy: keras_adv {100 * (ours_fell == -1).mean():.2f}%, "
        f"reference {100 * ref['robust_accuracy']:.2f}% (re-checked on its "
        f"returned x_adv: {100 * ref['robust_check']:.2f}%); robust in both "
        f"{int(both.sum())}, only in keras_adv "
        f"{int(((ours_fell == -1) & (ref_fell != -1)).sum())}, only in the "
        f"reference {int(((ref_fell == -1) & (ours_fell != -1)).sum())}",
        f"reference run_standard_evaluation call (with its clean pass and "
        f"checks): {ref['call_seconds']:.1f} s",
        f"speed-up (reference / keras_adv wall time): "
        f"{ref['total_seconds'] / meta['total_seconds']:.2f}x",
        f"versions: torch {torch.__version__}, pyautoattack "
        f"{pyautoattack.__version__}, torch threads "
        f"{torch.get_num_threads()}; keras side {meta['versions']}",
    ]
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("side", choices=("keras", "reference"))
    parser.add_argument("--model", default="pgd7.keras")
    parser.add_argument("--out", default="aa_compare.npz")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", default=None, help="also write a JSON")
    args = parser.parse_args(argv)
    if args.side == "keras":
        run_keras(args)
    else:
        run_reference(args)


if __name__ == "__main__":
    main()
