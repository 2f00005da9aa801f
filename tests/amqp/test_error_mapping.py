"""Routing-core errors map to RabbitMQ's reply codes, channel- or connection-level."""

from __future__ import annotations

import pytest

from firth.amqp.errors import amqp_error_for
from firth.amqp.protocol import AmqpChannelError, AmqpConnectionError, ReplyCode
from firth.broker.exchanges import Router, RoutingError


@pytest.mark.parametrize(
    ("action", "code", "hard"),
    [
        (lambda r: r.declare_exchange("nope", "direct", passive=True), ReplyCode.NOT_FOUND, False),
        (lambda r: r.declare_exchange("amq.x", "direct"), ReplyCode.ACCESS_REFUSED, False),
        (
            lambda r: r.declare_exchange("amq.direct", "fanout", durable=True),
            ReplyCode.PRECONDITION_FAILED,
            False,
        ),
        (lambda r: r.declare_exchange("x", "bogus"), ReplyCode.COMMAND_INVALID, True),
        (
            lambda r: (r.declare_exchange("x", "direct"), r.declare_exchange("x", "fanout")),
            ReplyCode.PRECONDITION_FAILED,
            False,
        ),
    ],
)
def test_routing_errors_become_amqp_errors(action, code: ReplyCode, hard: bool) -> None:  # type: ignore[no-untyped-def]
    router = Router()
    with pytest.raises(RoutingError) as caught:
        action(router)
    error = amqp_error_for(caught.value, channel=3, class_id=40, method_id=10)
    assert error.reply_code is code
    assert (error.class_id, error.method_id) == (40, 10)
    if hard:
        assert isinstance(error, AmqpConnectionError)
    else:
        assert isinstance(error, AmqpChannelError) and error.channel == 3
    assert error.close_text.startswith(code.name + " - ")
