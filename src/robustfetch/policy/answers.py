"""Reading what a remote server answers: JSON parsed only to a bounded nesting depth.

A hostile index or API can send ``[[[[...]]]]`` nested a million deep; the
standard parser would recurse until the interpreter gives up. The depth is
measured first, without recursion, and a document nested deeper than any
real answer is a ``ValueError`` naming the limit.

>>> load_json(b'{"urls": [{"url": "https://f.example/a.tgz"}]}')
{'urls': [{'url': 'https://f.example/a.tgz'}]}
>>> load_json(b"[" * 100 + b"]" * 100)
Traceback (most recent call last):
...
ValueError: JSON answer nested deeper than 64 levels
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "json_depth", "load_json"]

#: PyPI's and PEP 691's answers nest about five deep.
MAX_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data`` (strings skipped), no recursion.

    >>> json_depth(b'{"a": ["[[[", {"b": []}]}')
    4
    """
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_json(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``data`` (UTF-8 JSON) parsed, if it nests no deeper than ``max_depth``.

    :raises ValueError: too deep, not UTF-8, or not JSON.
    """
    if json_depth(data) > max_depth:
        raise ValueError(f"JSON answer nested deeper than {max_depth} levels")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:  # cannot happen below the limit; a ValueError all the same
        raise ValueError(f"JSON answer nested deeper than {max_depth} levels") from None
