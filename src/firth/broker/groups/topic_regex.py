"""Topic regexes of KIP-848 subscriptions (SubscribedTopicRegex), matched without blow-ups.

Kafka matches subscription regexes with RE2 (linear time, no backreferences or lookarounds).
Python's `re` backtracks, so a hostile pattern such as `(a+)+b` would stall the event loop on a
long topic name. Firth serves the subset whose backtracking stays small on topic names (at most
249 characters): no nested repetition, no alternation inside a repetition, at most
`MAX_REPEATS` repetitions in all, and, as in RE2, no backreferences or lookarounds. Anything
else gets INVALID_REGULAR_EXPRESSION with the reason. Every subscription regex seen in practice
(`orders\\..*`, `^(audit|metrics)-[a-z]+$`) is inside the subset.

A regex matches a topic when it matches the whole name, as Kafka's `matches()` does.
"""

from __future__ import annotations

import re
import re._parser as sre_parse  # the stdlib's own regex parser; no other way to see the tree
from typing import Any

MAX_REPEATS = 3
"""Repetitions per pattern: worst-case backtracking grows as (name length) ** repetitions."""

MAX_PATTERN_CHARS = 1_000

_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}
_UNSUPPORTED = {
    "GROUPREF": "backreferences",
    "GROUPREF_EXISTS": "conditional groups",
    "ASSERT": "lookarounds",
    "ASSERT_NOT": "lookarounds",
}


class _Refused(Exception):
    pass


def regex_error(pattern: str) -> str | None:
    """Why `pattern` is not served (a message for the client), or None if it is."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"longer than {MAX_PATTERN_CHARS} characters"
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError) as exc:  # e.g. a{4294967296}, deep nesting
        return str(exc) or type(exc).__name__
    repeats = 0

    def walk(items: Any, inside_repeat: bool) -> None:
        nonlocal repeats
        for op, arg in items:
            name = str(op)
            if name in _UNSUPPORTED:
                raise _Refused(f"{_UNSUPPORTED[name]} are not supported")
            if name in _REPEATS:
                if inside_repeat:
                    raise _Refused("nested repetition is not supported")
                repeats += 1
                if repeats > MAX_REPEATS:
                    raise _Refused(f"more than {MAX_REPEATS} repetitions are not supported")
                walk(arg[2], True)
            elif name == "BRANCH":
                if inside_repeat:
                    raise _Refused("alternation inside a repetition is not supported")
                for alternative in arg[1]:
                    walk(alternative, inside_repeat)
            elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
                walk(arg[-1], inside_repeat)

    try:
        walk(parsed, False)
        re.compile(pattern)
    except _Refused as refused:
        return str(refused)
    except (re.error, OverflowError, RecursionError) as exc:
        return str(exc) or type(exc).__name__
    return None


class TopicMatcher:
    """One served regex, with its verdict per topic name remembered."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled = re.compile(pattern)
        self._verdicts: dict[str, bool] = {}

    def matches(self, topic: str) -> bool:
        verdict = self._verdicts.get(topic)
        if verdict is None:
            verdict = self._verdicts[topic] = self._compiled.fullmatch(topic) is not None
        return verdict
