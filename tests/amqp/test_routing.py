"""The routing core: every exchange type, e2e bindings with cycles, alternate exchanges, rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firth.broker.exchanges import (
    STANDARD_EXCHANGES,
    AccessRefused,
    CommandInvalid,
    HeadersPattern,
    NotFound,
    PreconditionFailed,
    Router,
    TopicTrie,
)


def router_with(*queues: str) -> Router:
    router = Router()
    for queue in queues:
        router.add_queue(queue)
    return router


# -- exchange types ----------------------------------------------------------------------------


def test_default_exchange_routes_to_the_queue_named_by_the_key() -> None:
    router = router_with("orders")
    assert router.route("", "orders") == {"orders"}
    assert router.route("", "missing") == set()
    router.remove_queue("orders")
    assert router.route("", "orders") == set()


def test_direct_exchange() -> None:
    router = router_with("a", "b", "c")
    router.declare_exchange("d", "direct")
    router.bind_queue("a", "d", "red")
    router.bind_queue("b", "d", "red")
    router.bind_queue("c", "d", "blue")
    assert router.route("d", "red") == {"a", "b"}
    assert router.route("d", "blue") == {"c"}
    assert router.route("d", "green") == set()
    router.unbind_queue("a", "d", "red")
    assert router.route("d", "red") == {"b"}


def test_fanout_exchange_ignores_the_key() -> None:
    router = router_with("a", "b")
    router.declare_exchange("f", "fanout")
    router.bind_queue("a", "f", "")
    router.bind_queue("b", "f", "anything")
    assert router.route("f", "whatever") == {"a", "b"}


def test_topic_exchange() -> None:
    router = router_with("all", "stock", "usd", "exact", "empty")
    router.declare_exchange("t", "topic")
    router.bind_queue("all", "t", "#")
    router.bind_queue("stock", "t", "stock.*.nyse")
    router.bind_queue("usd", "t", "*.usd.#")
    router.bind_queue("exact", "t", "a.b")
    router.bind_queue("empty", "t", "")
    assert router.route("t", "stock.usd.nyse") == {"all", "stock", "usd"}
    assert router.route("t", "stock.eur.nyse") == {"all", "stock"}
    assert router.route("t", "fx.usd") == {"all", "usd"}
    assert router.route("t", "a.b") == {"all", "exact"}
    assert router.route("t", "") == {"all", "empty"}
    assert router.route("t", "stock.usd.nyse.extra") == {"all", "usd"}


def test_same_queue_bound_twice_gets_one_copy() -> None:
    router = router_with("q")
    router.declare_exchange("t", "topic")
    router.bind_queue("q", "t", "a.*")
    router.bind_queue("q", "t", "#")
    assert router.route("t", "a.b") == {"q"}


@pytest.mark.parametrize(
    ("arguments", "headers", "matches"),
    [
        ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1, "b": "x", "c": 0}, True),
        ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1}, False),
        ({"x-match": "any", "a": 1, "b": "x"}, {"a": 2, "b": "x"}, True),
        ({"x-match": "any", "a": 1, "b": "x"}, {"a": 2}, False),
        ({"a": 1}, {"a": 1}, True),  # x-match defaults to all
        ({"x-match": "all"}, {}, True),  # nothing to check: all matches
        ({"x-match": "any"}, {"a": 1}, False),  # nothing to check: any fails
        ({"x-match": "all", "x-tag": "t"}, {}, True),  # x- keys ignored without -with-x
        ({"x-match": "all-with-x", "x-tag": "t"}, {}, False),
        ({"x-match": "all-with-x", "x-tag": "t"}, {"x-tag": "t"}, True),
        ({"x-match": "any-with-x", "x-tag": "t", "a": 1}, {"x-tag": "t"}, True),
        ({"x-match": "any", "x-tag": "t"}, {"x-tag": "t"}, False),
        ({"x-match": "all", "a": None}, {"a": "anything"}, True),  # void: presence only
        ({"x-match": "all", "a": None}, {}, False),
        ({"x-match": "all", "a": 1}, {"a": 1.0}, True),  # compared by value, not wire type
        ({"x-match": "all", "a": True}, {"a": 1}, False),  # booleans only equal booleans
        ({"x-match": "all", "a": 1}, None, False),
    ],
)
def test_headers_exchange(arguments: dict, headers: dict | None, matches: bool) -> None:
    router = router_with("q")
    router.declare_exchange("h", "headers")
    router.bind_queue("q", "h", "", arguments)
    assert router.route("h", "ignored", headers) == ({"q"} if matches else set())
    assert HeadersPattern.from_arguments(arguments).matches(headers) is matches


@pytest.mark.parametrize("mode", ["some", 5])
def test_invalid_x_match_is_precondition_failed(mode: object) -> None:
    router = router_with("q")
    with pytest.raises(PreconditionFailed):
        router.bind_queue("q", "amq.headers", "", {"x-match": mode})
    assert router.bindings_of_queue("q") == set()


# -- exchange-to-exchange bindings and alternate exchanges ------------------------------------


def test_exchange_to_exchange_delivers_one_copy_per_queue_even_with_cycles() -> None:
    router = router_with("q1", "q2")
    for name in ("a", "b", "c"):
        router.declare_exchange(name, "fanout")
    router.bind_exchange("b", "a", "")
    router.bind_exchange("c", "b", "")
    router.bind_exchange("a", "c", "")  # cycle a → b → c → a
    router.bind_exchange("c", "a", "")  # and a shortcut a → c
    router.bind_queue("q1", "b", "")
    router.bind_queue("q1", "c", "")
    router.bind_queue("q2", "a", "")
    assert router.route("a", "k") == {"q1", "q2"}
    assert router.route("c", "k") == {"q1", "q2"}


def test_exchange_to_exchange_respects_the_source_type() -> None:
    router = router_with("q")
    router.declare_exchange("t", "topic")
    router.declare_exchange("d", "direct")
    router.bind_exchange("d", "t", "logs.#")
    router.bind_queue("q", "d", "logs.error")
    assert router.route("t", "logs.error") == {"q"}
    assert router.route("t", "logs.info") == set()
    assert router.route("t", "metrics") == set()


def test_alternate_exchange_takes_unroutable_messages() -> None:
    router = router_with("main", "unrouted")
    router.declare_exchange("ae", "fanout")
    router.declare_exchange("x", "direct", arguments={"alternate-exchange": "ae"})
    router.bind_queue("main", "x", "known")
    router.bind_queue("unrouted", "ae", "")
    assert router.route("x", "known") == {"main"}
    assert router.route("x", "other") == {"unrouted"}


def test_alternate_exchange_cycle_terminates() -> None:
    router = router_with()
    router.declare_exchange("x", "direct", arguments={"alternate-exchange": "y"})
    router.declare_exchange("y", "direct", arguments={"alternate-exchange": "x"})
    assert router.route("x", "k") == set()


def test_missing_alternate_exchange_is_ignored() -> None:
    router = router_with()
    router.declare_exchange("x", "direct", arguments={"alternate-exchange": "nowhere"})
    assert router.route("x", "k") == set()


# -- declaration rules -------------------------------------------------------------------------


def test_standard_exchanges_exist_and_are_protected() -> None:
    router = Router()
    for name, (type_, internal) in STANDARD_EXCHANGES.items():
        exchange = router.get(name)
        assert (exchange.type, exchange.internal, exchange.durable) == (type_, internal, True)
        assert router.declare_exchange(name, type_, passive=True) is exchange
        # RabbitMQ checks the reserved prefix only when creating: an equivalent redeclare of
        # an existing amq.* exchange is fine, an inequivalent one is 406.
        assert router.declare_exchange(name, type_, durable=True, internal=internal) is exchange
        with pytest.raises(PreconditionFailed):
            router.declare_exchange(name, type_, durable=False, internal=internal)
        with pytest.raises(AccessRefused):
            router.delete_exchange(name)
    with pytest.raises(AccessRefused):
        router.declare_exchange("amq.custom", "direct")
    with pytest.raises(AccessRefused):
        router.delete_exchange("")


def test_default_exchange_cannot_be_bound() -> None:
    router = router_with("q")
    with pytest.raises(AccessRefused):
        router.bind_queue("q", "", "q")


def test_redeclare_must_be_equivalent() -> None:
    router = Router()
    router.declare_exchange("x", "direct", durable=True, arguments={"alternate-exchange": "ae"})
    router.declare_exchange("x", "direct", durable=True, arguments={"alternate-exchange": "ae"})
    for change in (
        {"type_": "fanout", "durable": True},
        {"type_": "direct", "durable": False},
        {"type_": "direct", "durable": True, "auto_delete": True},
        {"type_": "direct", "durable": True, "internal": True},
        {"type_": "direct", "durable": True, "arguments": {}},
    ):
        with pytest.raises(PreconditionFailed):
            router.declare_exchange("x", **change)  # type: ignore[arg-type]
    # Other arguments may differ, as in RabbitMQ.
    router.declare_exchange(
        "x", "direct", durable=True, arguments={"alternate-exchange": "ae", "other": 1}
    )


def test_inequivalent_message_names_the_argument_like_rabbitmq() -> None:
    router = Router()
    router.declare_exchange("x", "direct", durable=True)
    with pytest.raises(PreconditionFailed) as caught:
        router.declare_exchange("x", "direct", durable=False)
    assert caught.value.message == (
        "inequivalent arg 'durable' for exchange 'x' in vhost '/': "
        "received 'false' but current is 'true'"
    )


def test_unknown_exchange_type_is_command_invalid() -> None:
    with pytest.raises(CommandInvalid):
        Router().declare_exchange("x", "x-consistent-hash")


def test_passive_declare_of_missing_exchange_is_not_found() -> None:
    with pytest.raises(NotFound):
        Router().declare_exchange("nope", "direct", passive=True)


def test_publish_to_missing_or_internal_exchange() -> None:
    router = Router()
    with pytest.raises(NotFound):
        router.route("nope", "k")
    router.declare_exchange("hidden", "fanout", internal=True)
    with pytest.raises(AccessRefused):
        router.route("hidden", "k")


def test_internal_exchange_is_reachable_through_bindings() -> None:
    router = router_with("q")
    router.declare_exchange("hidden", "fanout", internal=True)
    router.declare_exchange("front", "fanout")
    router.bind_exchange("hidden", "front", "")
    router.bind_queue("q", "hidden", "")
    assert router.route("front", "k") == {"q"}


def test_bind_to_missing_queue_or_exchange_is_not_found() -> None:
    router = router_with("q")
    with pytest.raises(NotFound):
        router.bind_queue("missing", "amq.direct", "k")
    with pytest.raises(NotFound):
        router.bind_queue("q", "missing", "k")
    with pytest.raises(NotFound):
        router.bind_exchange("missing", "amq.direct", "k")


def test_delete_if_unused_and_cleanup_of_bindings() -> None:
    router = router_with("q")
    router.declare_exchange("x", "fanout")
    router.declare_exchange("up", "fanout")
    router.bind_queue("q", "x", "")
    router.bind_exchange("x", "up", "")
    with pytest.raises(PreconditionFailed):
        router.delete_exchange("x", if_unused=True)
    router.delete_exchange("x")
    assert "x" not in router.exchanges
    assert router.bindings() == []
    assert router.bindings_of_queue("q") == set()
    router.delete_exchange("x")  # deleting a missing exchange is fine, as in RabbitMQ


def test_auto_delete_exchange_goes_with_its_last_binding() -> None:
    router = router_with("q1", "q2")
    router.declare_exchange("auto", "fanout", auto_delete=True)
    router.bind_queue("q1", "auto", "")
    router.bind_queue("q2", "auto", "")
    router.remove_queue("q1")
    assert "auto" in router.exchanges
    router.unbind_queue("q2", "auto", "")
    assert "auto" not in router.exchanges


def test_binding_identity_includes_arguments() -> None:
    router = router_with("q")
    router.bind_queue("q", "amq.headers", "", {"x-match": "any", "a": 1})
    router.bind_queue("q", "amq.headers", "", {"x-match": "any", "b": 2})
    assert len(router.bindings_of_queue("q")) == 2
    router.unbind_queue("q", "amq.headers", "", {"x-match": "any", "a": 1})
    assert router.route("amq.headers", "", {"a": 1}) == set()
    assert router.route("amq.headers", "", {"b": 2}) == {"q"}


def test_definitions_list_durable_user_exchanges_and_bindings() -> None:
    router = router_with("q")
    router.declare_exchange("kept", "topic", durable=True)
    router.declare_exchange("transient", "topic")
    router.bind_queue("q", "kept", "a.#")
    definitions = router.definitions()
    assert [x["name"] for x in definitions["exchanges"]] == ["kept"]
    assert definitions["bindings"][0]["routing_key"] == "a.#"


# -- topic matching against a naive model ------------------------------------------------------


def naive_topic_match(pattern: str, key: str) -> bool:
    """The obvious recursive definition, as the model the trie must agree with."""

    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        if not k:
            return False
        return (p[0] == "*" or p[0] == k[0]) and match(p[1:], k[1:])

    return match(pattern.split(".") if pattern else [], key.split(".") if key else [])


WORDS = st.sampled_from(["a", "b", "c", ""])
PATTERN_WORDS = st.sampled_from(["a", "b", "c", "*", "#", ""])
keys = st.lists(WORDS, max_size=6).map(".".join)
patterns = st.lists(PATTERN_WORDS, max_size=6).map(".".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=8), st.lists(keys, min_size=1, max_size=8))
def test_topic_trie_agrees_with_naive_model(pattern_list: list[str], key_list: list[str]) -> None:
    trie: TopicTrie[int] = TopicTrie()
    for index, pattern in enumerate(pattern_list):
        trie.add(pattern, index)
    for key in key_list:
        expected = {i for i, p in enumerate(pattern_list) if naive_topic_match(p, key)}
        assert trie.match(key) == expected, (pattern_list, key)
        assert trie.match(key) == expected  # cached answer is the same


@settings(max_examples=200, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=8), st.data())
def test_topic_trie_remove_agrees_with_model(pattern_list: list[str], data: st.DataObject) -> None:
    trie: TopicTrie[int] = TopicTrie()
    for index, pattern in enumerate(pattern_list):
        trie.add(pattern, index)
    removed = data.draw(st.sets(st.integers(0, len(pattern_list) - 1)))
    for index in removed:
        trie.remove(pattern_list[index], index)
    assert len(trie) == len(pattern_list) - len(removed)
    key = data.draw(keys)
    expected = {
        i for i, p in enumerate(pattern_list) if i not in removed and naive_topic_match(p, key)
    }
    assert trie.match(key) == expected


def test_naive_model_on_fixed_cases() -> None:
    # Pin the model itself to RabbitMQ's documented behaviour before trusting it as an oracle.
    assert naive_topic_match("#", "")
    assert naive_topic_match("a.#", "a")
    assert naive_topic_match("#.a", "a")
    assert naive_topic_match("a.#.b", "a.b")
    assert naive_topic_match("a.#.b", "a.x.y.b")
    assert not naive_topic_match("a.*", "a")
    assert not naive_topic_match("*", "")
    assert naive_topic_match("", "")
    assert naive_topic_match("*.*", ".")


def test_topic_matching_is_polynomial_on_hash_heavy_patterns() -> None:
    trie: TopicTrie[int] = TopicTrie()
    trie.add(".".join(["#"] * 30) + ".z", 1)
    key = ".".join(["a"] * 120)
    assert trie.match(key) == set()  # returns promptly: states are visited once
    assert trie.match(key + ".z") == {1}
