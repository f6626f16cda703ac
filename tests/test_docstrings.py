"""Runs the `Example:` sections of the public docstrings as doctests.

The public API is what each subpackage lists in `__all__` (implementation
modules are private), so the examples are collected from those objects,
including the methods of public classes.
"""

import doctest
import importlib
import inspect

import pytest

import keras_adv

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
SKIP = ("testing", "cli")


def _public_objects():
    seen = set()
    items = []
    for package in keras_adv.__all__:
        if package.startswith("_") or package in SKIP:
            continue
        module = importlib.import_module(f"keras_adv.{package}")
        if not inspect.ismodule(module):
            continue
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if id(obj) in seen or not (
                inspect.isclass(obj) or inspect.isfunction(obj)
            ):
                continue
            seen.add(id(obj))
            items.append((f"keras_adv.{package}.{name}", obj))
    return sorted(items, key=lambda item: item[0])


OBJECTS = _public_objects()


def test_every_public_object_is_collected():
    assert len(OBJECTS) > 60


@pytest.mark.parametrize("name,obj", OBJECTS, ids=[n for n, _ in OBJECTS])
def test_docstring_examples(name, obj):
    finder = doctest.DocTestFinder(recurse=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    globs = {}
    for test in finder.find(obj, name, globs=globs):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
