"""Runs the `Example:` sections of the public docstrings as doctests."""

import doctest
import importlib
import pkgutil

import pytest

import keras_adv

# Modules whose examples are too slow for the default run (training loops):
# they are exercised by their own tests and examples instead.
SLOW_EXAMPLES = set()


def _modules():
    names = []
    for info in pkgutil.walk_packages(keras_adv.__path__, "keras_adv."):
        if info.name.split(".")[-1].startswith("_"):
            continue
        if ".testing" in info.name or info.name.endswith(".cli"):
            continue
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    if name in SLOW_EXAMPLES:
        pytest.skip("slow example; covered by its module's tests")
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
