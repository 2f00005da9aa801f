"""The queue core (``firth.broker.queues``) without sockets: a fake host drives its clock,
timers and dead-letter sink, and a fake channel records deliveries.

A hypothesis state machine checks a queue against a model (a list kept in arrival order):
get, ack and requeue in any order must hand out messages in the model's order, with
``redelivered`` exactly when the model says the message was handed out before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from firth.broker.queues import (
    Consumer,
    Queue,
    QueuedMessage,
    QueuePreconditionFailed,
)
from firth.broker.queues.arguments import QueueArguments, consumer_priority
from firth.broker.queues.queue import REFUSED


class FakeTimer:
    def __init__(self, host: FakeHost, at: int, callback: Callable[[], None]) -> None:
        self.at, self.callback, self.cancelled = at, callback, False
        host.timers.append(self)

    def cancel(self) -> None:
        self.cancelled = True


class FakeHost:
    def __init__(self) -> None:
        self.now = 1_000_000
        self.timers: list[FakeTimer] = []
        self.dead: list[tuple[str, bytes, str]] = []
        self.unused: list[tuple[str, str]] = []

    def now_ms(self) -> int:
        return self.now

    def schedule(self, delay_s: float, callback: Callable[[], None]) -> FakeTimer:
        return FakeTimer(self, self.now + int(delay_s * 1000), callback)

    def advance(self, ms: int) -> None:
        self.now += ms
        while True:
            due = [t for t in self.timers if not t.cancelled and t.at <= self.now]
            if not due:
                return
            for timer in due:
                self.timers.remove(timer)
                timer.callback()

    def dead_letter(self, queue: Queue, message: QueuedMessage, reason: str) -> None:
        self.dead.append((queue.name, message.body, reason))

    def queue_unused(self, queue: Queue, reason: str) -> None:
        self.unused.append((queue.name, reason))

    def journal_dirty(self, store: Any) -> None:
        pass


class FakeChannel:
    def __init__(self, global_prefetch: int = 0) -> None:
        self.unacked_count = 0
        self.global_prefetch = global_prefetch
        self.blocked = False
        self.delivered: list[tuple[str, QueuedMessage]] = []

    def deliver(self, consumer: Consumer, message: QueuedMessage) -> None:
        if not consumer.no_ack:
            self.unacked_count += 1
        self.delivered.append((consumer.tag, message))

    def cancelled_by_queue(self, consumer: Consumer) -> None:
        pass

    def bodies(self, tag: str | None = None) -> list[bytes]:
        return [m.body for t, m in self.delivered if tag is None or t == tag]

    def settle(self, consumer: Consumer, message: QueuedMessage, ack: bool = True) -> None:
        self.unacked_count -= 1
        consumer.unacked -= 1
        if ack:
            consumer.queue.ack(message)
        else:
            consumer.queue.reject(message, True)
        consumer.queue.dispatch()


def message(body: bytes, host: FakeHost, **kwargs: Any) -> QueuedMessage:
    return QueuedMessage("", "rk", b"\x00\x00", body, timestamp=host.now, **kwargs)


def make_queue(host: FakeHost, **arguments: Any) -> Queue:
    return Queue("q", host, arguments={f"x-{k.replace('_', '-')}": v for k, v in arguments.items()})


def publish(queue: Queue, host: FakeHost, *bodies: bytes, **kwargs: Any) -> list[int]:
    return [queue.publish(message(body, host, **kwargs)) for body in bodies]


def drain(queue: Queue) -> list[bytes]:
    out = []
    while (got := queue.get(no_ack=True)) is not None:
        out.append(got.body)
    return out


# -- ordering, requeue -------------------------------------------------------------------------


class QueueModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.host = FakeHost()
        self.queue = Queue("q", self.host)
        self.model: list[tuple[int, bool]] = []  # ready (id, handed out before), arrival order
        self.held: list[tuple[int, QueuedMessage]] = []
        self.next_id = 0

    @rule()
    def publish(self) -> None:
        self.queue.publish(message(str(self.next_id).encode(), self.host))
        self.model.append((self.next_id, False))
        self.next_id += 1

    @rule()
    def get(self) -> None:
        got = self.queue.get(no_ack=False)
        if not self.model:
            assert got is None
            return
        expected, seen = self.model.pop(0)
        assert got is not None and int(got.body) == expected and got.redelivered == seen
        self.held.append((expected, got))

    @rule(data=st.data(), requeue=st.booleans())
    def settle(self, data: st.DataObject, requeue: bool) -> None:
        if not self.held:
            return
        index = data.draw(st.integers(0, len(self.held) - 1))
        ident, held = self.held.pop(index)
        if requeue:
            self.queue.reject(held, True)
            self.model.append((ident, True))
            self.model.sort()
        else:
            self.queue.ack(held)

    @invariant()
    def counts(self) -> None:
        assert self.queue.ready_count == len(self.model)
        assert self.queue.unacked_count == len(self.held)


TestQueueModel = QueueModel.TestCase
TestQueueModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


def test_priorities_drain_highest_first_then_fifo() -> None:
    host = FakeHost()
    queue = make_queue(host, max_priority=3)
    for body, priority in [(b"a1", 1), (b"b3", 3), (b"c0", 0), (b"d9", 9), (b"e1", 1)]:
        queue.publish(message(body, host, priority=priority))
    assert drain(queue) == [b"b3", b"d9", b"a1", b"e1", b"c0"]


# -- consumers ---------------------------------------------------------------------------------


def test_round_robin_with_per_consumer_prefetch() -> None:
    host = FakeHost()
    queue = make_queue(host)
    channel = FakeChannel()
    first = Consumer("a", channel, queue, prefetch=2)
    second = Consumer("b", channel, queue, prefetch=2)
    queue.add_consumer(first)
    queue.add_consumer(second)
    publish(queue, host, *[str(i).encode() for i in range(6)])
    assert channel.bodies("a") == [b"0", b"2"] and channel.bodies("b") == [b"1", b"3"]
    assert queue.ready_count == 2
    channel.settle(first, channel.delivered[0][1])
    assert channel.bodies("a") == [b"0", b"2", b"4"]


def test_global_prefetch_limits_the_channel() -> None:
    host = FakeHost()
    queue = make_queue(host)
    channel = FakeChannel(global_prefetch=3)
    for tag in "ab":
        queue.add_consumer(Consumer(tag, channel, queue))
    publish(queue, host, *[b"m"] * 10)
    assert len(channel.delivered) == 3 and queue.ready_count == 7


def test_consumer_priority_and_single_active_consumer() -> None:
    host = FakeHost()
    queue = make_queue(host)
    low_channel, high_channel = FakeChannel(), FakeChannel()
    queue.add_consumer(Consumer("low", low_channel, queue, priority=0))
    queue.add_consumer(Consumer("high", high_channel, queue, priority=5, prefetch=2))
    publish(queue, host, *[str(i).encode() for i in range(5)])
    assert high_channel.bodies() == [b"0", b"1"]
    assert low_channel.bodies() == [b"2", b"3", b"4"]

    sac = Queue("sac", host, arguments={"x-single-active-consumer": True})
    channel = FakeChannel()
    active, standby = Consumer("1", channel, sac, no_ack=True), Consumer("2", channel, sac)
    sac.add_consumer(active)
    sac.add_consumer(standby)
    publish(sac, host, b"x", b"y")
    assert channel.bodies("1") == [b"x", b"y"]
    sac.remove_consumer(active)
    publish(sac, host, b"z")
    assert channel.bodies("2") == [b"z"]


def test_backpressure_stops_delivery_until_resumed() -> None:
    host = FakeHost()
    queue = make_queue(host)
    channel = FakeChannel()
    queue.add_consumer(Consumer("c", channel, queue, no_ack=True))
    channel.blocked = True
    publish(queue, host, b"1", b"2")
    assert channel.delivered == []
    channel.blocked = False
    queue.dispatch()
    assert channel.bodies() == [b"1", b"2"]


def test_consumer_arguments() -> None:
    assert consumer_priority({"x-priority": 7}) == 7
    with pytest.raises(QueuePreconditionFailed):
        consumer_priority({"x-stream-offset": 1})


# -- TTL, length limits, dead-lettering --------------------------------------------------------


def test_queue_ttl_expires_at_the_head_and_dead_letters() -> None:
    host = FakeHost()
    queue = make_queue(host, message_ttl=100, dead_letter_exchange="dlx")
    publish(queue, host, b"old")
    host.advance(50)
    publish(queue, host, b"young")
    host.advance(60)  # the first is due
    assert queue.ready_count == 1 and host.dead == [("q", b"old", "expired")]
    host.advance(100)
    assert queue.ready_count == 0 and [d[1] for d in host.dead] == [b"old", b"young"]


def test_ttl_zero_reaches_a_waiting_consumer_only() -> None:
    host = FakeHost()
    queue = make_queue(host, message_ttl=0)
    publish(queue, host, b"nobody")
    host.advance(1)
    assert queue.ready_count == 0
    channel = FakeChannel()
    queue.add_consumer(Consumer("c", channel, queue, no_ack=True))
    publish(queue, host, b"waiting")
    assert channel.bodies() == [b"waiting"]


def test_per_message_expiration_uses_the_lower_ttl() -> None:
    host = FakeHost()
    queue = make_queue(host, message_ttl=1000)
    queue.publish(message(b"short", host, expires_at=host.now + 10))
    queue.publish(message(b"long", host, expires_at=host.now + 60_000))
    assert queue.levels[0].fresh[1].expires_at == host.now + 1000
    host.advance(20)
    assert drain(queue) == [b"long"]


def test_length_limits_and_overflow_modes() -> None:
    host = FakeHost()
    queue = make_queue(host, max_length=2, dead_letter_exchange="dlx")
    publish(queue, host, b"1", b"2", b"3")
    assert drain(queue) == [b"2", b"3"] and host.dead == [("q", b"1", "maxlen")]

    by_bytes = make_queue(host, max_length_bytes=10)
    publish(by_bytes, host, b"aaaaa", b"bbbbb", b"ccccc")
    assert drain(by_bytes) == [b"bbbbb", b"ccccc"]

    refusing = make_queue(host, max_length=1, overflow="reject-publish")
    assert publish(refusing, host, b"fits", b"refused") == [0, REFUSED]
    host.dead.clear()
    dlx = make_queue(host, max_length=1, overflow="reject-publish-dlx", dead_letter_exchange="x")
    assert publish(dlx, host, b"fits", b"refused") == [0, REFUSED]
    assert host.dead == [("q", b"refused", "maxlen")]


def test_delivery_limit_dead_letters_after_too_many_returns() -> None:
    host = FakeHost()
    queue = make_queue(host, delivery_limit=1, dead_letter_exchange="dlx")
    publish(queue, host, b"poison")
    for expected_returns in (0, 1):
        got = queue.get(no_ack=False)
        assert got is not None and got.returns == expected_returns
        queue.reject(got, True)
    assert queue.ready_count == 0 and host.dead == [("q", b"poison", "delivery_limit")]


def test_reject_without_requeue_dead_letters_or_drops() -> None:
    host = FakeHost()
    plain = make_queue(host)
    publish(plain, host, b"m")
    got = plain.get(no_ack=False)
    assert got is not None
    plain.reject(got, False)
    assert host.dead == [] and plain.ready_count == 0 and plain.unacked_count == 0


# -- queue lifecycle ---------------------------------------------------------------------------


def test_x_expires_deletes_an_unused_queue_but_not_a_consumed_one() -> None:
    host = FakeHost()
    idle = Queue("idle", host, arguments={"x-expires": 100})
    consumed = Queue("consumed", host, arguments={"x-expires": 100})
    consumed.add_consumer(Consumer("c", FakeChannel(), consumed))
    host.advance(60)
    idle.touch()  # a use restarts the clock
    host.advance(60)
    assert host.unused == []
    host.advance(60)
    assert host.unused == [("idle", "expired")]


def test_auto_delete_after_the_last_consumer_goes() -> None:
    host = FakeHost()
    queue = Queue("auto", host, auto_delete=True)
    first, second = (Consumer(t, FakeChannel(), queue) for t in "ab")
    queue.add_consumer(first)
    queue.add_consumer(second)
    queue.remove_consumer(first)
    assert host.unused == []
    queue.remove_consumer(second)
    assert host.unused == [("auto", "auto_delete")]


def test_purge_keeps_unacked() -> None:
    host = FakeHost()
    queue = make_queue(host)
    publish(queue, host, b"taken", b"ready")
    taken = queue.get(no_ack=False)
    assert queue.purge() == 1
    assert taken is not None
    queue.reject(taken, True)
    again = queue.get(no_ack=True)
    assert again is not None and again.body == b"taken" and again.redelivered


@pytest.mark.parametrize(
    "arguments",
    [
        {"x-firth-unknown": 1},
        {"x-max-length": "ten"},
        {"x-message-ttl": -1},
        {"x-overflow": "explode"},
        {"x-max-priority": 256},
        {"x-queue-type": "stream"},
        {"x-single-active-consumer": 1},
        {"x-dead-letter-routing-key": "k"},
    ],
)
def test_bad_or_unknown_arguments_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(QueuePreconditionFailed) as refused:
        QueueArguments.parse(arguments)
    assert next(iter(arguments)) in str(refused.value)


def test_known_arguments_parse() -> None:
    parsed = QueueArguments.parse(
        {
            "x-message-ttl": 5,
            "x-max-priority": 3,
            "x-queue-type": "quorum",
            "x-delivery-limit": 4,
            "x-dead-letter-exchange": b"dlx",
        }
    )
    assert (parsed.message_ttl, parsed.max_priority, parsed.queue_type) == (5, 3, "quorum")
    assert (parsed.delivery_limit, parsed.dead_letter_exchange) == (4, "dlx")


@pytest.mark.parametrize("with_consumer", [False, True])
def test_short_publish_path_matches_the_general_one(with_consumer: bool) -> None:
    """A queue without limits, queue TTL or priorities publishes on an inlined short path;
    forced onto the general path, the same publishes give the same state and deliveries."""
    results = []
    for plain in (True, False):
        host = FakeHost()
        queue = make_queue(host)
        assert queue._plain
        queue._plain = plain
        channel = FakeChannel()
        if with_consumer:
            queue.add_consumer(Consumer("c", channel, queue, prefetch=2))
        waits = publish(queue, host, b"a", b"b")
        waits += publish(queue, host, b"soon", expires_at=host.now + 5)
        waits += publish(queue, host, b"c")
        host.advance(10)
        seqs = [m.seq for level in queue.levels for m in level.fresh]
        results.append(
            (waits, channel.bodies(), queue.ready_count, queue.ready_bytes, seqs, drain(queue))
        )
    assert results[0] == results[1]
    assert results[0][-1] == ([b"c"] if with_consumer else [b"a", b"b", b"c"])
