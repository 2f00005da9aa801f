"""Configured AMQP users (``amqp_users``) log in beside guest; wrong passwords are refused."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from firth.testing import running_broker

pytestmark = pytest.mark.timeout(60)


def test_configured_users_log_in() -> None:
    with running_broker(amqp_listen="127.0.0.1:0", amqp_users="alice:s3cret,bob:pw") as broker:
        assert broker.amqp_port is not None

        def connect(user: str, password: str) -> pika.BlockingConnection:
            credentials = pika.PlainCredentials(user, password)
            return pika.BlockingConnection(
                pika.ConnectionParameters("127.0.0.1", broker.amqp_port, credentials=credentials)
            )

        for user, password in (("alice", "s3cret"), ("bob", "pw"), ("guest", "guest")):
            connection = connect(user, password)
            assert connection.channel().queue_declare("", exclusive=True).method.queue
            connection.close()
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            connect("alice", "wrong")
