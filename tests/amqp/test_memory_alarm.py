"""Resource alarms: above the memory limit (or below the free-disk limit), publishers get
connection.blocked and are no longer read from; once consumers (or a purge) bring memory
below, connection.unblocked follows."""

from __future__ import annotations

import pika
import pytest

from tests.amqp.test_handshake_interop import ServerThread, _params

pytestmark = pytest.mark.timeout(60)


def test_publisher_is_blocked_then_unblocked() -> None:
    with ServerThread(memory_limit=1000) as server:
        publisher = pika.BlockingConnection(_params(server.port))
        events: list[str] = []
        publisher.add_on_connection_blocked_callback(lambda *_: events.append("blocked"))
        publisher.add_on_connection_unblocked_callback(lambda *_: events.append("unblocked"))
        channel = publisher.channel()
        channel.queue_declare("big")
        channel.basic_publish("", "big", b"x" * 2000)
        publisher.process_data_events(0)
        deadline = 20
        while "blocked" not in events and deadline:
            publisher.process_data_events(0.25)
            deadline -= 1
        assert events == ["blocked"]

        cleaner = pika.BlockingConnection(_params(server.port))  # never published: not blocked
        assert cleaner.channel().queue_purge("big").method.message_count == 1
        deadline = 20
        while "unblocked" not in events and deadline:
            publisher.process_data_events(0.25)
            deadline -= 1
        assert events == ["blocked", "unblocked"]
        channel.queue_declare("big", passive=True)  # reading resumed: the broker answers
        cleaner.close()
        publisher.close()


def test_low_disk_blocks_publishers() -> None:
    with ServerThread(disk_free_limit=1 << 62) as server:  # more than any disk has free
        publisher = pika.BlockingConnection(_params(server.port))
        reasons: list[str] = []
        publisher.add_on_connection_blocked_callback(
            lambda _connection, frame: reasons.append(frame.method.reason)
        )
        channel = publisher.channel()
        channel.queue_declare("any")
        channel.basic_publish("", "any", b"x")
        deadline = 20
        while not reasons and deadline:
            publisher.process_data_events(0.25)
            deadline -= 1
        assert reasons == ["low on disk"]
        # As in RabbitMQ, a blocked publisher is not read from (not even its close), so the
        # alarm must clear first: free disk is now above the limit.
        unblocked: list[bool] = []
        publisher.add_on_connection_unblocked_callback(lambda *_: unblocked.append(True))
        server.server.disk_free_limit = 0
        deadline = 20
        while not unblocked and deadline:
            publisher.process_data_events(0.25)
            deadline -= 1
        assert unblocked
        publisher.close()
