"""Methods: golden frames, the methods table, and interop with pika's and pamqp's codecs."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pamqp.commands
import pamqp.frame
import pika.spec
import pytest

from firth.amqp.protocol import METHODS, AmqpConnectionError, ReplyCode, decode_method
from firth.amqp.protocol.frames import encode_method_frame
from firth.amqp.protocol.methods import (
    ALL_METHODS,
    BasicAck,
    BasicDeliver,
    BasicNack,
    BasicPublish,
    BasicReject,
    Method,
    QueueDeclare,
    _parse_wire,
    encode_deliver,
)

GOLDEN_PUBLISH = (
    b"\x00\x3c"  # class 60 basic
    b"\x00\x28"  # method 40 publish
    b"\x00\x00"  # reserved ticket
    b"\x09amq.topic"  # exchange shortstr
    b"\x07a.b.c.d"  # routing key shortstr
    b"\x01"  # bits: mandatory=1 (bit 0), immediate=0 (bit 1)
)

GOLDEN_DELIVER = (
    b"\x00\x3c\x00\x3c"  # basic.deliver (60, 60)
    b"\x04ctag"  # consumer tag
    b"\x00\x00\x00\x00\x00\x00\x01\x00"  # delivery tag 256 (longlong)
    b"\x01"  # redelivered bit
    b"\x02ex"  # exchange
    b"\x02rk"  # routing key
)

GOLDEN_NACK = (
    b"\x00\x3c\x00\x78"  # basic.nack (60, 120)
    b"\x00\x00\x00\x00\x00\x00\x00\x09"  # delivery tag 9
    b"\x02"  # bits: multiple=0 (bit 0), requeue=1 (bit 1)
)


def test_golden_publish() -> None:
    method = BasicPublish("amq.topic", "a.b.c.d", mandatory=True)
    assert method.encode() == GOLDEN_PUBLISH
    assert decode_method(GOLDEN_PUBLISH) == method


def test_golden_deliver() -> None:
    method = BasicDeliver("ctag", 256, True, "ex", "rk")
    assert method.encode() == GOLDEN_DELIVER
    assert encode_deliver("ctag", 256, True, "ex", "rk") == GOLDEN_DELIVER
    assert decode_method(GOLDEN_DELIVER) == method


def test_golden_nack() -> None:
    assert BasicNack(9, multiple=False, requeue=True).encode() == GOLDEN_NACK
    assert decode_method(GOLDEN_NACK) == BasicNack(9, False, True)


def test_golden_queue_declare_with_arguments() -> None:
    payload = (
        b"\x00\x32\x00\x0a"  # queue.declare (50, 10)
        b"\x00\x00"  # reserved ticket
        b"\x01q"  # queue name
        b"\x02"  # bits: passive 0, durable 1, exclusive 0, auto-delete 0, nowait 0
        b"\x00\x00\x00\x12"  # arguments table, 18 bytes
        b"\x0cx-max-lengthI\x00\x00\x00\x0a"  # x-max-length: int32 10
    )
    method = QueueDeclare(queue="q", durable=True, arguments={"x-max-length": 10})
    assert method.encode() == payload
    assert decode_method(payload) == method


def test_methods_table_rows() -> None:
    publish = METHODS[(60, 40)]
    assert (publish.name, publish.has_content, publish.synchronous) == (
        "basic.publish",
        True,
        False,
    )
    declare = METHODS[(50, 10)]
    assert declare.synchronous and declare.reply == "queue.declare-ok"
    assert not declare.has_content
    assert METHODS[(40, 51)].name == "exchange.unbind-ok"  # RabbitMQ's numbering
    assert len(METHODS) == len(ALL_METHODS) == 64
    for spec in METHODS.values():
        if spec.reply is not None:
            assert any(other.name == spec.reply for other in METHODS.values()), spec.name


def test_unknown_method_is_command_invalid() -> None:
    with pytest.raises(AmqpConnectionError) as caught:
        decode_method(b"\x00\x3c\x03\xe7")
    assert caught.value.reply_code is ReplyCode.COMMAND_INVALID
    assert (caught.value.class_id, caught.value.method_id) == (60, 999)


@pytest.mark.parametrize("cls", ALL_METHODS, ids=lambda c: c.NAME)
def test_truncated_and_overlong_payloads_are_syntax_errors(cls: type[Method]) -> None:
    payload = _sample(cls).encode()
    with pytest.raises(AmqpConnectionError) as caught:
        decode_method(payload + b"\x00")
    assert caught.value.reply_code is ReplyCode.SYNTAX_ERROR
    if len(payload) > 4:
        for cut in range(4, len(payload)):
            with pytest.raises(AmqpConnectionError) as caught:
                decode_method(payload[:cut])
            assert caught.value.reply_code is ReplyCode.SYNTAX_ERROR


# -- samples and pika/pamqp interop -----------------------------------------------------------------

_SAMPLE_INTS = {"octet": 7, "short": 513, "long": 70000, "longlong": 2**40, "timestamp": 2**33}
_PIKA_NAMES = {"global_": "global_qos"}


def _sample(cls: type[Method]) -> Method:
    """A method with every argument set to a non-default value of its wire type."""
    kinds = dict(_parse_wire(cls.WIRE))
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = kinds[field.name]
        if kind in _SAMPLE_INTS:
            values[field.name] = _SAMPLE_INTS[kind]
        elif kind == "shortstr":
            values[field.name] = f"{field.name}-é"
        elif kind == "longstr":
            values[field.name] = f"{field.name}\x00bytes".encode()
        elif kind == "bit":
            values[field.name] = True
        else:
            values[field.name] = {"k": "v", "n": 5, "nested": {"ok": True}}
    return cls(**values)


def _pika_instance(cls: type[Method]) -> Any:
    """pika's class for the same method, built blank (some insist on positional arguments)."""
    pika_cls = pika.spec.methods[(cls.CLASS_ID << 16) | cls.METHOD_ID]
    required = [
        name
        for name, parameter in inspect.signature(pika_cls.__init__).parameters.items()
        if name != "self" and parameter.default is inspect.Parameter.empty
    ]
    return pika_cls(**dict.fromkeys(required))


@pytest.mark.parametrize("cls", ALL_METHODS, ids=lambda c: c.NAME)
def test_our_encoding_decodes_in_pika(cls: type[Method]) -> None:
    ours = _sample(cls)
    payload = ours.encode()
    theirs = _pika_instance(cls)
    theirs.decode(payload[4:], 0)
    if cls.NAME == "connection.update-secret":
        # pika 1.4's decoder stores new_secret under ``mechanisms`` (its bug).
        assert theirs.mechanisms == ours.new_secret  # type: ignore[attr-defined]
        assert theirs.reason == ours.reason  # type: ignore[attr-defined]
        return
    for field in dataclasses.fields(ours):  # type: ignore[arg-type]
        value = getattr(theirs, _PIKA_NAMES.get(field.name, field.name))
        expected = getattr(ours, field.name)
        if isinstance(expected, bytes) and isinstance(value, str):
            value = value.encode()
        assert value == expected, field.name


@pytest.mark.parametrize("cls", ALL_METHODS, ids=lambda c: c.NAME)
def test_pika_encoding_decodes_here(cls: type[Method]) -> None:
    ours = _sample(cls)
    theirs = _pika_instance(cls)
    for field in dataclasses.fields(ours):  # type: ignore[arg-type]
        setattr(theirs, _PIKA_NAMES.get(field.name, field.name), getattr(ours, field.name))
    payload = (
        cls.CLASS_ID.to_bytes(2, "big")
        + cls.METHOD_ID.to_bytes(2, "big")
        + b"".join(theirs.encode())
    )
    assert decode_method(payload) == ours
    assert payload == ours.encode()


@pytest.mark.parametrize(
    "command",
    [
        pamqp.commands.Basic.Publish(exchange="ex", routing_key="rk", mandatory=True),
        pamqp.commands.Basic.Ack(delivery_tag=77, multiple=True),
        pamqp.commands.Basic.Reject(delivery_tag=3, requeue=False),
        pamqp.commands.Basic.Nack(delivery_tag=5, multiple=True, requeue=False),
        pamqp.commands.Queue.Declare(queue="q", durable=True, arguments={"x-max-priority": 5}),
        pamqp.commands.Basic.Consume(queue="q", consumer_tag="c", no_ack=True),
        pamqp.commands.Exchange.Bind(destination="d", source="s", routing_key="k"),
    ],
    ids=lambda c: c.name,
)
def test_pamqp_encoding_decodes_here_and_back(command: Any) -> None:
    frame = pamqp.frame.marshal(command, 1)
    payload = frame[7:-1]
    ours = decode_method(payload)
    if not getattr(command, "arguments", None):
        assert ours.encode() == payload
    # (pamqp picks the narrowest int type for table values, so tables re-encode differently.)
    _, _, back = pamqp.frame.unmarshal(encode_method_frame(1, ours))
    assert [getattr(back, a) for a in command.__slots__] == [
        getattr(command, a) for a in command.__slots__
    ]


@pytest.mark.parametrize("cls", [BasicAck, BasicReject, BasicNack, BasicPublish, BasicDeliver])
def test_hand_written_codecs_agree_with_the_generic_spec_codec(cls: type[Method]) -> None:
    method = _sample(cls)
    generic = bytearray(method.CLASS_ID.to_bytes(2, "big") + method.METHOD_ID.to_bytes(2, "big"))
    cls._encoder(method, generic)
    assert bytes(generic) == method.encode()
    assert cls(**cls._decoder(generic, 4, len(generic))) == cls.decode(generic, 4, len(generic))
