"""Graph signatures: the cache key of every compiled function.

A compiled attack or evaluation graph depends on an object's settings, not
on its eps (a tensor argument: changing it never retraces). The signature
of an object is its class and its config without eps, with every callable
that cannot be serialised (a lambda loss, a closure) entering by identity.
Serialisation is needed only to save: a callable that is not registered may
refuse to be saved, never to run.

While `graph_signature` reads a config, `callable_token` (called by the
serialisers that would otherwise refuse, such as `keras_adv.losses.
serialize`) records the callable and returns a placeholder; the recorded
callables are part of the signature (held strongly, compared by identity).
"""

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

_STATE = threading.local()


@contextlib.contextmanager
def _recording() -> Iterator[list[Any]]:
    previous = getattr(_STATE, "callables", None)
    _STATE.callables = []
    try:
        yield _STATE.callables
    finally:
        _STATE.callables = previous


def callable_token(fn: object) -> str | None:
    """A placeholder for `fn` (any object) while a signature is read.

    Returns None outside `graph_signature`.

    A serialiser that cannot serialise `fn` calls this first: inside
    `graph_signature` it gets a placeholder (and `fn` joins the signature
    by identity); outside, None, and it raises as before.
    """
    callables = getattr(_STATE, "callables", None)
    if callables is None:
        return None
    for index, known in enumerate(callables):
        if known is fn:
            return f"<callable #{index}>"
    callables.append(fn)
    return f"<callable #{len(callables) - 1}>"


def graph_signature(
    obj: Any, exclude: tuple[str, ...] = ("eps",)
) -> tuple[type, str, tuple[Any, ...]]:
    """The hashable cache key of the graphs built for `obj`.

    An object whose full config is costly to read (one that serialises a
    Keras model) defines `graph_config()`: the settings that shape its
    graph, with the heavy parts entered by `callable_token(part)`.

    Args:
        obj: An object with `get_config()` (an attack, an objective).
        exclude: Config keys that do not shape the graph.

    Returns:
        A tuple `(class, config JSON without exclude, callables)`: equal for
        objects that trace the same graph.
    """
    read = getattr(obj, "graph_config", None) or obj.get_config
    with _recording() as callables:
        config = dict(read())
    for key in exclude:
        config.pop(key, None)
    text = json.dumps(config, sort_keys=True, default=repr)
    return (type(obj), text, tuple(callables))
