"""Exchanges over pika (blocking): every type's routing, the predeclared exchanges, declaration
rules, alternate exchanges and exchange-to-exchange bindings (one copy per queue, cycles too).

Publishing is synchronous here: the channel is in confirm mode, so once basic_publish returns
the broker has routed the message to every queue it reaches, and counting what a queue holds
is a fact, not a race.
"""

from __future__ import annotations

from collections.abc import Callable

import pika
import pika.exceptions
import pytest

from tests.amqp_interop.helpers import Channel, drain, message_count

pytestmark = pytest.mark.timeout(60)

Name = Callable[[str], str]


@pytest.fixture
def confirmed(channel: Channel) -> Channel:
    channel.confirm_delivery()
    return channel


def queues(channel: Channel, name: Name, *suffixes: str) -> list[str]:
    made = []
    for suffix in suffixes:
        made.append(channel.queue_declare(name(suffix), auto_delete=False).method.queue)
    return made


def test_direct_routes_by_exact_key(confirmed: Channel, name: Name) -> None:
    exchange = name("direct")
    confirmed.exchange_declare(exchange, "direct")
    red, blue = queues(confirmed, name, "red", "blue")
    confirmed.queue_bind(red, exchange, "red")
    confirmed.queue_bind(blue, exchange, "blue")
    confirmed.queue_bind(blue, exchange, "navy")
    for key in ("red", "blue", "navy", "green"):
        confirmed.basic_publish(exchange, key, key.encode())
    assert drain(confirmed, red) == [b"red"]
    assert drain(confirmed, blue) == [b"blue", b"navy"]


def test_fanout_copies_to_every_bound_queue(confirmed: Channel, name: Name) -> None:
    exchange = name("fanout")
    confirmed.exchange_declare(exchange, "fanout")
    bound = queues(confirmed, name, "a", "b", "c")
    for queue in bound:
        confirmed.queue_bind(queue, exchange, "ignored")
    confirmed.basic_publish(exchange, "any-key", b"hello")
    assert [drain(confirmed, queue) for queue in bound] == [[b"hello"]] * 3


TOPIC_BINDINGS = {
    "q1": ["*.orange.*"],
    "q2": ["*.*.rabbit", "lazy.#"],
    "q3": ["#"],
    "q4": ["a.#.z"],
    "q5": ["#.end"],
}
TOPIC_CASES = {
    "quick.orange.rabbit": {"q1", "q2", "q3"},
    "lazy.orange.elephant": {"q1", "q2", "q3"},
    "quick.orange.fox": {"q1", "q3"},
    "lazy.orange.rabbit": {"q1", "q2", "q3"},  # both of q2's bindings match
    "lazy.brown.fox": {"q2", "q3"},
    "lazy": {"q2", "q3"},  # '#' matches zero words
    "quick.brown.fox": {"q3"},
    "quick.orange.new.rabbit": {"q3"},  # '*' matches exactly one word
    "orange": {"q3"},
    "a.z": {"q4", "q3"},
    "a.b.c.z": {"q4", "q3"},
    "end": {"q5", "q3"},
    "x.y.end": {"q5", "q3"},
    "": {"q3"},
}


def test_topic_star_and_hash(confirmed: Channel, name: Name) -> None:
    exchange = name("topic")
    confirmed.exchange_declare(exchange, "topic")
    names = {short: name(short) for short in TOPIC_BINDINGS}
    for short, patterns in TOPIC_BINDINGS.items():
        confirmed.queue_declare(names[short])
        for pattern in patterns:
            confirmed.queue_bind(names[short], exchange, pattern)
    for key in TOPIC_CASES:
        confirmed.basic_publish(exchange, key, key.encode())
    got = {short: drain(confirmed, full) for short, full in names.items()}
    for key, expected in TOPIC_CASES.items():
        reached = {short for short, bodies in got.items() if key.encode() in bodies}
        assert reached == expected, key
    # one copy per queue even when two of its bindings match
    assert got["q2"].count(b"lazy.orange.rabbit") == 1


HEADER_BINDINGS: dict[str, dict[str, object]] = {
    "all": {"x-match": "all", "format": "pdf", "type": "report"},
    "any": {"x-match": "any", "format": "pdf", "type": "report"},
    "default": {"format": "zip"},  # no x-match means all
    "any_x_only": {"x-match": "any", "x-tag": "a"},  # x- keys do not count without -with-x
    "any_with_x": {"x-match": "any-with-x", "x-tag": "a"},
    "all_with_x": {"x-match": "all-with-x", "x-tag": "a", "format": "pdf"},
    "void": {"x-match": "all", "flag": None},  # a void value matches on presence alone
}
HEADER_CASES: list[tuple[dict[str, object], set[str]]] = [
    ({"format": "pdf", "type": "report"}, {"all", "any"}),
    ({"format": "pdf", "type": "log"}, {"any"}),
    ({"format": "zip", "type": "report"}, {"any", "default"}),
    ({"format": "zip"}, {"default"}),
    ({"x-tag": "a"}, {"any_with_x"}),
    ({"x-tag": "a", "format": "pdf"}, {"any", "any_with_x", "all_with_x"}),
    ({"x-tag": "b", "format": "pdf"}, {"any"}),
    ({"flag": 1}, {"void"}),
    ({"flag": "yes", "format": "zip"}, {"void", "default"}),
    ({"flag": None}, {"void"}),
    ({}, set()),
]


def test_headers_match_modes(confirmed: Channel, name: Name) -> None:
    exchange = name("headers")
    confirmed.exchange_declare(exchange, "headers")
    names = {short: name(short) for short in HEADER_BINDINGS}
    for short, arguments in HEADER_BINDINGS.items():
        confirmed.queue_declare(names[short])
        confirmed.queue_bind(names[short], exchange, "", arguments=arguments)
    for index, (headers, _) in enumerate(HEADER_CASES):
        confirmed.basic_publish(
            exchange, "", str(index).encode(), pika.BasicProperties(headers=headers)
        )
    got = {short: drain(confirmed, full) for short, full in names.items()}
    for index, (headers, expected) in enumerate(HEADER_CASES):
        reached = {short for short, bodies in got.items() if str(index).encode() in bodies}
        assert reached == expected, headers


def test_default_exchange_routes_by_queue_name(confirmed: Channel, name: Name) -> None:
    queue = queues(confirmed, name, "q")[0]
    confirmed.basic_publish("", queue, b"direct-to-queue")
    assert drain(confirmed, queue) == [b"direct-to-queue"]


def test_default_exchange_refuses_bindings(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    queue = queues(channel, name, "q")[0]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.queue_bind(queue, "", "other")
    assert refused.value.reply_code == 403


@pytest.mark.parametrize(
    ("exchange", "kind"),
    [
        ("amq.direct", "direct"),
        ("amq.fanout", "fanout"),
        ("amq.topic", "topic"),
        ("amq.headers", "headers"),
        ("amq.match", "headers"),
    ],
)
def test_amq_exchanges_exist_and_route(
    confirmed: Channel, name: Name, exchange: str, kind: str
) -> None:
    confirmed.exchange_declare(exchange, kind, passive=True)
    confirmed.exchange_declare(exchange, kind, durable=True)  # an equivalent redeclare is fine
    queue = queues(confirmed, name, "q")[0]
    arguments = {"x-match": "all", "k": "v"} if kind == "headers" else None
    confirmed.queue_bind(queue, exchange, queue, arguments=arguments)
    confirmed.basic_publish(exchange, queue, b"m", pika.BasicProperties(headers={"k": "v"}))
    assert drain(confirmed, queue) == [b"m"]


def test_amq_prefix_is_reserved(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.exchange_declare("amq.firth-" + name("x"), "direct")
    assert refused.value.reply_code == 403
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.exchange_delete("amq.direct")
    assert refused.value.reply_code == 403


def test_passive_declare_of_missing_exchange_is_404(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.exchange_declare("no-such-exchange-here", "direct", passive=True)
    assert refused.value.reply_code == 404


def test_publish_to_missing_exchange_closes_the_channel_404(
    connection: pika.BlockingConnection,
) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.basic_publish("no-such-exchange-here", "k", b"m")
    assert refused.value.reply_code == 404


def test_durable_exchange_redeclare_must_match(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    exchange = name("durable")
    channel.exchange_declare(exchange, "direct", durable=True)
    channel.exchange_declare(exchange, "direct", durable=True)
    channel.exchange_declare(exchange, "direct", passive=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.exchange_declare(exchange, "direct", durable=False)
    assert refused.value.reply_code == 406
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.exchange_declare(exchange, "fanout", durable=True)
    assert refused.value.reply_code == 406
    connection.channel().exchange_delete(exchange)


def test_auto_delete_exchange_goes_with_its_last_binding(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    exchange = name("auto")
    channel.exchange_declare(exchange, "fanout", auto_delete=True)
    first, second = queues(channel, name, "a", "b")
    channel.queue_bind(first, exchange)
    channel.queue_bind(second, exchange)
    channel.queue_unbind(first, exchange)
    channel.exchange_declare(exchange, "fanout", passive=True)  # one binding left
    channel.queue_unbind(second, exchange)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as gone:
        channel.exchange_declare(exchange, "fanout", passive=True)
    assert gone.value.reply_code == 404


def test_exchange_delete_if_unused(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    exchange = name("x")
    channel.exchange_declare(exchange, "direct")
    queue = queues(channel, name, "q")[0]
    channel.queue_bind(queue, exchange, "k")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.exchange_delete(exchange, if_unused=True)
    assert refused.value.reply_code == 406
    channel = connection.channel()
    channel.exchange_delete(exchange)
    channel.exchange_delete(exchange)  # deleting a missing exchange succeeds


def test_alternate_exchange_takes_unroutable_messages(confirmed: Channel, name: Name) -> None:
    alternate, main = name("ae"), name("main")
    confirmed.exchange_declare(alternate, "fanout")
    confirmed.exchange_declare(main, "direct", arguments={"alternate-exchange": alternate})
    routed, unrouted = queues(confirmed, name, "routed", "unrouted")
    confirmed.queue_bind(routed, main, "known")
    confirmed.queue_bind(unrouted, alternate)
    returned: list[bytes] = []
    confirmed.add_on_return_callback(lambda _ch, _m, _p, body: returned.append(body))
    confirmed.basic_publish(main, "known", b"to-routed", mandatory=True)
    # routed through the alternate exchange counts as routed: no basic.return, no exception
    confirmed.basic_publish(main, "unknown", b"to-alternate", mandatory=True)
    assert drain(confirmed, routed) == [b"to-routed"]
    assert drain(confirmed, unrouted) == [b"to-alternate"]
    assert returned == []


def test_exchange_to_exchange_binding_and_unbind(confirmed: Channel, name: Name) -> None:
    upstream, downstream = name("up"), name("down")
    confirmed.exchange_declare(upstream, "topic")
    confirmed.exchange_declare(downstream, "direct")
    queue = queues(confirmed, name, "q")[0]
    confirmed.queue_bind(queue, downstream, "k.1")
    confirmed.exchange_bind(destination=downstream, source=upstream, routing_key="k.*")
    confirmed.basic_publish(upstream, "k.1", b"through")
    confirmed.basic_publish(upstream, "k.2", b"filtered-downstream")
    confirmed.basic_publish(upstream, "j.1", b"filtered-upstream")
    assert drain(confirmed, queue) == [b"through"]
    confirmed.exchange_unbind(destination=downstream, source=upstream, routing_key="k.*")
    confirmed.basic_publish(upstream, "k.1", b"after-unbind")
    assert message_count(confirmed, queue) == 0


def test_exchange_bindings_deliver_one_copy_per_queue_even_with_cycles(
    confirmed: Channel, name: Name
) -> None:
    a, b, c = name("a"), name("b"), name("c")
    for exchange in (a, b, c):
        confirmed.exchange_declare(exchange, "fanout")
    # a -> b -> c -> a (a cycle), plus a -> c directly: every path reaches the queue
    confirmed.exchange_bind(destination=b, source=a)
    confirmed.exchange_bind(destination=c, source=b)
    confirmed.exchange_bind(destination=a, source=c)
    confirmed.exchange_bind(destination=c, source=a)
    shared, only_b = queues(confirmed, name, "shared", "only_b")
    for exchange in (a, b, c):
        confirmed.queue_bind(shared, exchange)
    confirmed.queue_bind(only_b, b)
    for exchange in (a, b, c):
        confirmed.basic_publish(exchange, "", f"via-{exchange[-1]}".encode())
    assert drain(confirmed, shared) == [b"via-a", b"via-b", b"via-c"]
    assert drain(confirmed, only_b) == [b"via-a", b"via-b", b"via-c"]


def test_internal_exchange_refuses_publishes(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    exchange = name("internal")
    channel.exchange_declare(exchange, "fanout", internal=True)
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.basic_publish(exchange, "", b"m")
    assert refused.value.reply_code == 403
