"""Writes the API reference (docs/api.md) from the public docstrings.

Every name in each subpackage's `__all__` gets its signature and its
docstring. Run after changing a public docstring:

    .venv/bin/python scripts/build_api_docs.py [--check]

With `--check` nothing is written; the exit code is 1 if docs/api.md is out
of date (the test suite runs this).
"""

import argparse
import inspect
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"
SUBPACKAGES = [
    "threat_models",
    "attacks",
    "losses",
    "layers",
    "models",
    "callbacks",
    "evaluation",
    "metrics",
    "datasets",
]


def _signature(obj):
    try:
        target = obj.__init__ if inspect.isclass(obj) else obj
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return "(...)"
    params = [p for p in sig.parameters.values() if p.name != "self"]
    return str(sig.replace(parameters=params, return_annotation=sig.empty))


def _section(module_name, name, obj):
    kind = "class" if inspect.isclass(obj) else "function"
    doc = inspect.getdoc(obj) or "(no docstring)"
    lines = [
        f"### `{module_name}.{name}`",
        "",
        f"{kind} `{name}{_signature(obj)}`",
        "",
        "```text",
        doc,
        "```",
        "",
    ]
    return "\n".join(lines)


def render():
    sys.path.insert(0, str(ROOT))
    import importlib

    importlib.import_module("keras_adv")
    parts = [
        "# API reference",
        "",
        "Generated from the docstrings by `scripts/build_api_docs.py`; do "
        "not edit by hand.",
        "",
    ]
    for sub in SUBPACKAGES:
        module_name = f"keras_adv.{sub}"
        module = importlib.import_module(module_name)
        names = sorted(getattr(module, "__all__", []))
        if not names:
            continue
        parts += [f"## `{module_name}`", ""]
        summary = (inspect.getdoc(module) or "").split("\n")[0]
        if summary:
            parts += [summary, ""]
        for name in names:
            parts.append(_section(module_name, name, getattr(module, name)))
    return "\n".join(parts).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run {__file__}")
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
