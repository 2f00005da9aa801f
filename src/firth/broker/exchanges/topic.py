"""Topic matching: routing keys against binding patterns with ``*`` and ``#``, via a trie.

Keys and patterns are words separated by ``.``; the empty string is zero words (as in
RabbitMQ). In a pattern ``*`` matches exactly one word and ``#`` zero or more.

``TopicTrie`` stores patterns word by word, with ``*`` and ``#`` as ordinary edges. Matching
walks the trie breadth-first over states ``(node, words consumed)``; a ``#`` edge moves to every
later position at once. Each state is visited once, so a match costs at most
``nodes × (words + 1)`` steps whatever the patterns are (no backtracking blow-up on ``#.#.#``).
Results are cached per routing key until the bindings change: publishers reuse a few keys, so
the steady state is one dict lookup.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)

CACHE_LIMIT = 4096
"""Routing keys whose results are kept; the cache is dropped whole when full or on any change."""


def split_words(key: str) -> list[str]:
    return key.split(".") if key else []


class _Node(Generic[T]):
    __slots__ = ("children", "values")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.values: set[T] = set()


class TopicTrie(Generic[T]):
    """Patterns → values (bindings); ``match(key)`` returns the values of all matching patterns."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._cache: dict[str, frozenset[T]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, pattern: str, value: T) -> None:
        node = self._root
        for word in split_words(pattern):
            node = node.children.setdefault(word, _Node())
        if value not in node.values:
            node.values.add(value)
            self._size += 1
        self._cache.clear()

    def remove(self, pattern: str, value: T) -> None:
        """Remove ``value`` under ``pattern`` (absent is fine) and prune empty branches."""
        path: list[tuple[_Node[T], str]] = []
        node = self._root
        for word in split_words(pattern):
            child = node.children.get(word)
            if child is None:
                return
            path.append((node, word))
            node = child
        if value not in node.values:
            return
        node.values.discard(value)
        self._size -= 1
        self._cache.clear()
        for parent, word in reversed(path):
            child = parent.children[word]
            if child.values or child.children:
                break
            del parent.children[word]

    def match(self, key: str) -> frozenset[T]:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        words = split_words(key)
        count = len(words)
        found: set[T] = set()
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[_Node[T], int]] = [(self._root, 0)]
        while stack:
            node, index = stack.pop()
            state = (id(node), index)
            if state in seen:
                continue
            seen.add(state)
            if index == count:
                found.update(node.values)
            children = node.children
            if not children:
                continue
            if index < count:
                exact = children.get(words[index])
                if exact is not None:
                    stack.append((exact, index + 1))
                star = children.get("*")
                if star is not None:
                    stack.append((star, index + 1))
            hash_node = children.get("#")
            if hash_node is not None:
                for later in range(index, count + 1):
                    stack.append((hash_node, later))
        result = frozenset(found)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = result
        return result
