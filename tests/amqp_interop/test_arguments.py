"""Queue and consumer arguments over pika (blocking): TTLs, expiry, length limits and overflow,
dead-lettering with RabbitMQ's x-death headers, priorities, the delivery limit, single active
consumer, consumer priorities, and what happens to an argument the broker does not know.

TTLs are short (50-200 ms) and every expiry is waited for by polling with a deadline.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pika
import pika.compat
import pika.exceptions
import pytest

from tests.amqp_interop.helpers import (
    Channel,
    drain,
    get,
    message_count,
    pump_until,
    wait_count,
    wait_for,
    wait_get,
)

pytestmark = pytest.mark.timeout(60)

Name = Callable[[str], str]


@pytest.fixture
def confirmed(channel: Channel) -> Channel:
    channel.confirm_delivery()
    return channel


def dead_letter_target(channel: Channel, name: Name) -> tuple[str, str]:
    """A direct exchange and a queue bound to it for every key used here: (exchange, queue)."""
    exchange, queue = name("dlx"), name("dead")
    channel.exchange_declare(exchange, "direct")
    channel.queue_declare(queue)
    for key in ("dead-key", name("src"), name("src2"), "orig-key"):
        channel.queue_bind(queue, exchange, key)
    return exchange, queue


def is_long(value: object) -> bool:
    """pika decodes the 64-bit field type ``l`` into its ``long`` class, 32-bit ``I`` to int."""
    return isinstance(value, pika.compat.long)


# --- TTL --------------------------------------------------------------------------------------


def test_queue_message_ttl_expires_messages(confirmed: Channel, name: Name) -> None:
    queue = confirmed.queue_declare(name("q"), arguments={"x-message-ttl": 100}).method.queue
    keeper = confirmed.queue_declare(name("keeper"), arguments={"x-message-ttl": 60000})
    for body in (b"1", b"2"):
        confirmed.basic_publish("", queue, body)
        confirmed.basic_publish("", keeper.method.queue, body)
    wait_count(confirmed, queue, 0, timeout=5)
    assert message_count(confirmed, keeper.method.queue) == 2


def test_ttl_zero_expires_unless_a_consumer_is_waiting(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    queue = channel.queue_declare(name("q"), arguments={"x-message-ttl": 0}).method.queue
    channel.basic_publish("", queue, b"nobody-waiting")
    wait_count(channel, queue, 0, timeout=5)
    received: list[bytes] = []
    consumer = connection.channel()
    consumer.basic_consume(queue, lambda _c, _m, _p, body: received.append(body), auto_ack=True)
    channel.basic_publish("", queue, b"delivered-now")
    pump_until(connection, lambda: received, what="the TTL-0 message at a waiting consumer")
    assert received == [b"delivered-now"]


def test_per_message_expiration(confirmed: Channel, name: Name) -> None:
    queue = confirmed.queue_declare(name("q")).method.queue
    confirmed.basic_publish("", queue, b"short", pika.BasicProperties(expiration="100"))
    confirmed.basic_publish("", queue, b"long", pika.BasicProperties(expiration="60000"))
    confirmed.basic_publish("", queue, b"forever")
    wait_count(confirmed, queue, 2, timeout=5)
    got = get(confirmed, queue)
    assert got is not None and got[2] == b"long" and got[1].expiration == "60000"
    assert drain(confirmed, queue) == [b"forever"]


def test_lower_of_queue_and_message_ttl_applies(confirmed: Channel, name: Name) -> None:
    queue = confirmed.queue_declare(name("q"), arguments={"x-message-ttl": 100}).method.queue
    confirmed.basic_publish("", queue, b"m", pika.BasicProperties(expiration="60000"))
    wait_count(confirmed, queue, 0, timeout=5)


def test_invalid_expiration_is_refused(confirmed: Channel, name: Name) -> None:
    queue = confirmed.queue_declare(name("q")).method.queue
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        confirmed.basic_publish("", queue, b"m", pika.BasicProperties(expiration="soon"))
    assert refused.value.reply_code == 406


def routable(channel: Channel, queue: str) -> bool:
    """Whether ``queue`` exists, asked without using it: a passive declare would count as a use
    and restart its x-expires timer, a mandatory publish does not."""
    try:
        channel.basic_publish("", queue, b"probe", mandatory=True)
    except pika.exceptions.UnroutableError:
        return False
    return True


def test_queue_expires_when_unused(confirmed: Channel, name: Name) -> None:
    queue = confirmed.queue_declare(name("q"), arguments={"x-expires": 150}).method.queue
    assert routable(confirmed, queue)
    wait_for(lambda: not routable(confirmed, queue), timeout=10, what="the queue to expire")


def test_queue_with_a_consumer_does_not_expire(
    connection: pika.BlockingConnection, name: Name
) -> None:
    channel = connection.channel()
    queue = channel.queue_declare(name("q"), arguments={"x-expires": 100}).method.queue
    channel.basic_consume(queue, lambda *a: None, auto_ack=True)
    other = connection.channel()
    other.confirm_delivery()
    marker = other.queue_declare(name("marker"), arguments={"x-expires": 300}).method.queue
    # a queue with three times the lifetime has expired, the consumed one is still here
    wait_for(lambda: not routable(other, marker), timeout=10, what="the marker queue to expire")
    assert other.queue_declare(queue, passive=True).method.consumer_count == 1


# --- length limits ----------------------------------------------------------------------------


def test_max_length_drops_from_the_head(confirmed: Channel, name: Name) -> None:
    queue = confirmed.queue_declare(name("q"), arguments={"x-max-length": 2}).method.queue
    for body in (b"1", b"2", b"3"):
        confirmed.basic_publish("", queue, body)
    assert drain(confirmed, queue) == [b"2", b"3"]


def test_max_length_bytes_counts_body_bytes(confirmed: Channel, name: Name) -> None:
    arguments = {"x-max-length-bytes": 10}
    queue = confirmed.queue_declare(name("q"), arguments=arguments).method.queue
    for body in (b"aaaaa", b"bbbbb", b"ccccc"):
        confirmed.basic_publish("", queue, body, pika.BasicProperties(headers={"pad": "x" * 100}))
    assert drain(confirmed, queue) == [b"bbbbb", b"ccccc"]


def test_overflow_reject_publish_nacks(confirmed: Channel, name: Name) -> None:
    arguments = {"x-max-length": 1, "x-overflow": "reject-publish"}
    queue = confirmed.queue_declare(name("q"), arguments=arguments).method.queue
    confirmed.basic_publish("", queue, b"fits")
    with pytest.raises(pika.exceptions.NackError):
        confirmed.basic_publish("", queue, b"refused")
    assert drain(confirmed, queue) == [b"fits"]
    confirmed.basic_publish("", queue, b"fits-again")  # room again after the get
    assert drain(confirmed, queue) == [b"fits-again"]


def test_overflow_reject_publish_dlx_dead_letters_the_refused(
    confirmed: Channel, name: Name
) -> None:
    exchange, dead = dead_letter_target(confirmed, name)
    arguments = {
        "x-max-length": 1,
        "x-overflow": "reject-publish-dlx",
        "x-dead-letter-exchange": exchange,
        "x-dead-letter-routing-key": "dead-key",
    }
    queue = confirmed.queue_declare(name("src"), arguments=arguments).method.queue
    confirmed.basic_publish("", queue, b"fits")
    with pytest.raises(pika.exceptions.NackError):
        confirmed.basic_publish("", queue, b"refused")
    assert drain(confirmed, queue) == [b"fits"]
    _, properties, body = wait_get(confirmed, dead)
    assert body == b"refused"
    [death] = properties.headers["x-death"]
    assert (death["reason"], death["queue"]) == ("maxlen", queue)


def test_drop_head_dead_letters_with_reason_maxlen(confirmed: Channel, name: Name) -> None:
    exchange, dead = dead_letter_target(confirmed, name)
    arguments = {"x-max-length": 1, "x-dead-letter-exchange": exchange}
    queue = confirmed.queue_declare(name("src"), arguments=arguments).method.queue
    confirmed.basic_publish("", queue, b"old")
    confirmed.basic_publish("", queue, b"new")
    assert drain(confirmed, queue) == [b"new"]
    _, properties, body = wait_get(confirmed, dead)
    assert body == b"old"
    assert properties.headers["x-death"][0]["reason"] == "maxlen"


# --- dead-lettering ---------------------------------------------------------------------------


def assert_x_death_entry(
    entry: dict[str, Any], *, count: int, reason: str, queue: str, exchange: str, keys: list[str]
) -> None:
    """One x-death table, exactly as RabbitMQ writes it (original-expiration checked apart)."""
    assert set(entry) - {"original-expiration"} == {
        "count",
        "reason",
        "queue",
        "time",
        "exchange",
        "routing-keys",
    }
    assert entry["count"] == count and is_long(entry["count"])
    assert (entry["reason"], entry["queue"], entry["exchange"]) == (reason, queue, exchange)
    assert entry["routing-keys"] == keys
    assert isinstance(entry["time"], datetime.datetime)
    now = datetime.datetime.now(datetime.UTC)
    assert abs((now - entry["time"]).total_seconds()) < 120


def assert_first_and_last_death(
    headers: dict[str, Any], target: str, first: tuple[str, str, str], last: tuple[str, str, str]
) -> None:
    """x-first-death-{queue,reason,exchange}; x-last-death-* too on Firth. The x-last-death-*
    headers came after RabbitMQ 3.10, so the 3.10 parity target does not send them."""
    assert (
        headers["x-first-death-queue"],
        headers["x-first-death-reason"],
        headers["x-first-death-exchange"],
    ) == first
    last_keys = ("x-last-death-queue", "x-last-death-reason", "x-last-death-exchange")
    if target == "rabbitmq":
        assert not set(last_keys) & set(headers)
    else:
        assert tuple(headers[key] for key in last_keys) == last


def test_rejected_message_is_dead_lettered_with_x_death(
    confirmed: Channel, name: Name, target: str
) -> None:
    exchange, dead = dead_letter_target(confirmed, name)
    source = name("source-x")
    confirmed.exchange_declare(source, "direct")
    arguments = {"x-dead-letter-exchange": exchange}  # no routing key: the original one is kept
    queue = confirmed.queue_declare(name("src"), arguments=arguments).method.queue
    confirmed.queue_bind(queue, source, "orig-key")
    properties = pika.BasicProperties(headers={"app": "kept"}, message_id="m1")
    confirmed.basic_publish(source, "orig-key", b"poison", properties)
    method, _, _ = wait_get(confirmed, queue, auto_ack=False)
    confirmed.basic_reject(method.delivery_tag, requeue=False)
    method, properties, body = wait_get(confirmed, dead)
    assert body == b"poison" and properties.message_id == "m1"
    assert (method.exchange, method.routing_key) == (exchange, "orig-key")
    headers = properties.headers
    assert headers["app"] == "kept"
    [entry] = headers["x-death"]
    assert_x_death_entry(
        entry, count=1, reason="rejected", queue=queue, exchange=source, keys=["orig-key"]
    )
    assert "original-expiration" not in entry
    assert_first_and_last_death(
        headers, target, (queue, "rejected", source), (queue, "rejected", source)
    )


def test_nack_dead_letters_with_the_queue_routing_key(confirmed: Channel, name: Name) -> None:
    exchange, dead = dead_letter_target(confirmed, name)
    arguments = {"x-dead-letter-exchange": exchange, "x-dead-letter-routing-key": "dead-key"}
    queue = confirmed.queue_declare(name("other"), arguments=arguments).method.queue
    for body in (b"1", b"2"):
        confirmed.basic_publish("", queue, body)
    confirmed.basic_get(queue)
    second = confirmed.basic_get(queue)[0]
    confirmed.basic_nack(second.delivery_tag, multiple=True, requeue=False)
    wait_count(confirmed, dead, 2)
    for expected in (b"1", b"2"):
        method, properties, body = wait_get(confirmed, dead)
        assert body == expected and method.routing_key == "dead-key"
        assert properties.headers["x-death"][0]["routing-keys"] == [queue]


def test_expired_message_is_dead_lettered_with_original_expiration(
    confirmed: Channel, name: Name, target: str
) -> None:
    exchange, dead = dead_letter_target(confirmed, name)
    arguments = {"x-dead-letter-exchange": exchange}
    queue = confirmed.queue_declare(name("src"), arguments=arguments).method.queue
    confirmed.basic_publish("", queue, b"late", pika.BasicProperties(expiration="50"))
    _, properties, body = wait_get(confirmed, dead)
    assert body == b"late"
    assert properties.expiration is None  # removed, so it does not expire again downstream
    [entry] = properties.headers["x-death"]
    assert_x_death_entry(entry, count=1, reason="expired", queue=queue, exchange="", keys=[queue])
    assert entry["original-expiration"] == "50"
    assert_first_and_last_death(
        properties.headers, target, (queue, "expired", ""), (queue, "expired", "")
    )


def test_queue_ttl_dead_letters_with_reason_expired(confirmed: Channel, name: Name) -> None:
    exchange, dead = dead_letter_target(confirmed, name)
    arguments = {"x-dead-letter-exchange": exchange, "x-message-ttl": 50}
    queue = confirmed.queue_declare(name("src"), arguments=arguments).method.queue
    confirmed.basic_publish("", queue, b"late")
    _, properties, _ = wait_get(confirmed, dead)
    [entry] = properties.headers["x-death"]
    assert entry["reason"] == "expired" and "original-expiration" not in entry


def test_x_death_counts_repeats_and_keeps_newest_first(
    confirmed: Channel, name: Name, target: str
) -> None:
    # src rejects to src2 (via the default exchange); src2 rejects back to src; src again to src2
    first = name("src")
    second = name("src2")
    confirmed.queue_declare(
        first, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": second}
    )
    confirmed.queue_declare(
        second, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": first}
    )
    confirmed.basic_publish("", first, b"bounced")
    for queue in (first, second, first):
        method, _, _ = wait_get(confirmed, queue, auto_ack=False)
        confirmed.basic_reject(method.delivery_tag, requeue=False)
    _, properties, body = wait_get(confirmed, second)
    assert body == b"bounced"
    deaths = properties.headers["x-death"]
    assert [(d["queue"], d["reason"], d["count"]) for d in deaths] == [
        (first, "rejected", 2),
        (second, "rejected", 1),
    ]
    assert all(is_long(d["count"]) for d in deaths)
    assert deaths[0]["routing-keys"] == [first] and deaths[1]["routing-keys"] == [second]
    assert_first_and_last_death(
        properties.headers, target, (first, "rejected", ""), (first, "rejected", "")
    )


def test_dead_letter_to_missing_exchange_drops(confirmed: Channel, name: Name) -> None:
    arguments = {"x-dead-letter-exchange": name("never-declared")}
    queue = confirmed.queue_declare(name("q"), arguments=arguments).method.queue
    confirmed.basic_publish("", queue, b"m")
    method, _, _ = wait_get(confirmed, queue, auto_ack=False)
    confirmed.basic_reject(method.delivery_tag, requeue=False)
    assert message_count(confirmed, queue) == 0


# --- priorities -------------------------------------------------------------------------------


def test_max_priority_orders_by_priority_then_fifo(confirmed: Channel, name: Name) -> None:
    queue = confirmed.queue_declare(name("q"), arguments={"x-max-priority": 5}).method.queue
    for body, priority in [
        (b"p1", 1),
        (b"p5-a", 5),
        (b"p3", 3),
        (b"p0", 0),
        (b"none", None),
        (b"p9-capped", 9),  # above the maximum: treated as 5
        (b"p5-b", 5),
    ]:
        confirmed.basic_publish("", queue, body, pika.BasicProperties(priority=priority))
    assert drain(confirmed, queue) == [
        b"p5-a",
        b"p9-capped",
        b"p5-b",
        b"p3",
        b"p1",
        b"p0",
        b"none",
    ]


def test_priority_is_ignored_without_max_priority(confirmed: Channel, name: Name) -> None:
    queue = confirmed.queue_declare(name("q")).method.queue
    for body, priority in [(b"low", 1), (b"high", 9)]:
        confirmed.basic_publish("", queue, body, pika.BasicProperties(priority=priority))
    assert drain(confirmed, queue) == [b"low", b"high"]


# --- delivery limit (quorum queues) -----------------------------------------------------------


def test_delivery_limit_counts_and_dead_letters(confirmed: Channel, name: Name) -> None:
    exchange, dead = dead_letter_target(confirmed, name)
    arguments = {
        "x-queue-type": "quorum",
        "x-delivery-limit": 2,
        "x-dead-letter-exchange": exchange,
        "x-dead-letter-routing-key": "dead-key",
    }
    queue = confirmed.queue_declare(name("src"), durable=True, arguments=arguments).method.queue
    try:
        confirmed.basic_publish("", queue, b"poison", pika.BasicProperties(delivery_mode=2))
        counts = []
        for attempt in range(3):  # the first delivery and two redeliveries
            method, properties, body = wait_get(confirmed, queue, auto_ack=False)
            assert body == b"poison" and method.redelivered == (attempt > 0)
            counts.append((properties.headers or {}).get("x-delivery-count", 0))
            confirmed.basic_nack(method.delivery_tag, requeue=True)
        assert counts == [0, 1, 2]
        _, properties, body = wait_get(confirmed, dead)
        assert body == b"poison"
        [entry] = properties.headers["x-death"]
        assert (entry["reason"], entry["queue"]) == ("delivery_limit", queue)
        assert message_count(confirmed, queue) == 0
    finally:
        confirmed.queue_delete(queue)


# --- consumers --------------------------------------------------------------------------------


def test_single_active_consumer(connection: pika.BlockingConnection, name: Name) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    arguments = {"x-single-active-consumer": True}
    queue = channel.queue_declare(name("q"), arguments=arguments).method.queue
    first: list[bytes] = []
    second: list[bytes] = []
    tag = channel.basic_consume(queue, lambda _c, _m, _p, b: first.append(b), auto_ack=True)
    channel.basic_consume(queue, lambda _c, _m, _p, b: second.append(b), auto_ack=True)
    for index in range(4):
        channel.basic_publish("", queue, f"a{index}".encode())
    pump_until(connection, lambda: len(first) == 4, what="four deliveries to the active one")
    channel.basic_cancel(tag)
    channel.basic_publish("", queue, b"b0")
    pump_until(connection, lambda: second == [b"b0"], what="the next consumer to take over")
    assert second == [b"b0"] and len(first) == 4


def test_consumer_priority(connection: pika.BlockingConnection, name: Name) -> None:
    publisher = connection.channel()
    publisher.confirm_delivery()
    queue = publisher.queue_declare(name("q")).method.queue
    low_channel, high_channel = connection.channel(), connection.channel()
    high_channel.basic_qos(prefetch_count=2)
    low: list[bytes] = []
    high: list[bytes] = []
    low_channel.basic_consume(
        queue, lambda _c, _m, _p, b: low.append(b), arguments={"x-priority": 0}
    )
    high_channel.basic_consume(
        queue, lambda _c, _m, _p, b: high.append(b), arguments={"x-priority": 10}
    )
    for index in range(6):
        publisher.basic_publish("", queue, str(index).encode())
    # the high-priority consumer takes what its prefetch allows, the rest goes to the low one
    pump_until(connection, lambda: len(low) + len(high) == 6, what="six deliveries")
    assert high == [b"0", b"1"]
    assert low == [b"2", b"3", b"4", b"5"]


# --- arguments the broker does not implement --------------------------------------------------


def test_unknown_queue_argument(
    connection: pika.BlockingConnection, name: Name, target: str
) -> None:
    """A deliberate difference: RabbitMQ 3.10 stores an unknown x- argument and ignores it;
    Firth refuses it (406), so a user is never told a feature works when it does not."""
    channel = connection.channel()
    arguments = {"x-firth-no-such-argument": 1}
    if target == "rabbitmq":
        ok = channel.queue_declare(name("q"), arguments=arguments)
        assert ok.method.queue == name("q")
    else:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare(name("q"), arguments=arguments)
        assert refused.value.reply_code == 406


@pytest.mark.parametrize(
    "arguments",
    [
        {"x-max-length": "ten"},
        {"x-message-ttl": -1},
        {"x-overflow": "explode"},
        {"x-max-priority": "high"},
    ],
    ids=["max-length-type", "negative-ttl", "overflow-value", "priority-type"],
)
def test_invalid_known_argument_is_406(
    connection: pika.BlockingConnection, name: Name, arguments: dict[str, object]
) -> None:
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.queue_declare(name("q"), arguments=arguments)
    assert refused.value.reply_code == 406


def test_delivery_limit_on_a_classic_durable_queue(
    connection: pika.BlockingConnection, name: Name, target: str
) -> None:
    """A deliberate difference: Firth applies x-delivery-limit to any durable queue (issue 4);
    RabbitMQ 3.10 implements it for quorum queues only and refuses it on a classic queue."""
    confirmed = connection.channel()
    confirmed.confirm_delivery()
    exchange, dead = dead_letter_target(confirmed, name)
    arguments = {
        "x-delivery-limit": 1,
        "x-dead-letter-exchange": exchange,
        "x-dead-letter-routing-key": "dead-key",
    }
    if target == "rabbitmq":
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            confirmed.queue_declare(name("src"), durable=True, arguments=arguments)
        assert refused.value.reply_code == 406
        return
    queue = confirmed.queue_declare(name("src"), durable=True, arguments=arguments).method.queue
    try:
        confirmed.basic_publish("", queue, b"poison", pika.BasicProperties(delivery_mode=2))
        counts = []
        for _ in range(2):  # the first delivery and one redelivery
            method, properties, _ = wait_get(confirmed, queue, auto_ack=False)
            counts.append((properties.headers or {}).get("x-delivery-count", 0))
            confirmed.basic_nack(method.delivery_tag, requeue=True)
        assert counts == [0, 1]
        _, properties, body = wait_get(confirmed, dead)
        assert body == b"poison"
        assert properties.headers["x-death"][0]["reason"] == "delivery_limit"
        assert message_count(confirmed, queue) == 0
    finally:
        confirmed.queue_delete(queue)
