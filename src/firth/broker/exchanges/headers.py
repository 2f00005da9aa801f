"""Headers-exchange matching: binding arguments against message headers, RabbitMQ's way.

A binding's arguments hold ``x-match`` (``all`` by default, ``any``, ``all-with-x``,
``any-with-x``) and the header pairs to look for. Keys starting ``x-`` take part only in the
``-with-x`` modes; ``x-match`` itself never does. A pattern value of ``None`` (AMQP void) asks
only that the header be present. ``all`` with no pairs left matches every message; ``any`` with
none matches nothing. Values compare by value, not wire type (an int16 1 equals an int64 1),
except that booleans equal only booleans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from firth.broker.exchanges.errors import PreconditionFailed

X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")


@dataclass(frozen=True, slots=True)
class HeadersPattern:
    match_all: bool
    pairs: tuple[tuple[str, Any], ...]

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> HeadersPattern:
        """Parse binding arguments; an invalid ``x-match`` is PRECONDITION_FAILED."""
        mode = arguments.get("x-match", "all")
        if isinstance(mode, bytes):
            mode = mode.decode("utf-8", "replace")
        if not isinstance(mode, str):
            raise PreconditionFailed(
                f"Invalid x-match field type {type(mode).__name__} (value {mode!r}); "
                "expected longstr"
            )
        if mode not in X_MATCH_MODES:
            raise PreconditionFailed(
                f"Invalid x-match field value {mode!r}; expected all, any, all-with-x, or "
                "any-with-x"
            )
        with_x = mode.endswith("-with-x")
        pairs = tuple(
            (key, value)
            for key, value in arguments.items()
            if key != "x-match" and (with_x or not key.startswith("x-"))
        )
        return cls(mode.startswith("all"), pairs)

    def matches(self, headers: Mapping[str, Any] | None) -> bool:
        headers = headers or {}
        if self.match_all:
            return all(_pair_matches(key, value, headers) for key, value in self.pairs)
        return any(_pair_matches(key, value, headers) for key, value in self.pairs)


_MISSING = object()


def _pair_matches(key: str, expected: Any, headers: Mapping[str, Any]) -> bool:
    actual = headers.get(key, _MISSING)
    if actual is _MISSING:
        return False
    if expected is None:
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)
