"""InitProducerId (22) for idempotent, non-transactional producers.

A producer without a transactional id gets a fresh producer id at epoch 0. A producer that
passes its current (id, epoch) (v3+, KIP-360, sent after an unknown-producer or sequence error)
gets the same id with the epoch bumped, which resets its sequences on every partition.
Transactions are not implemented yet, so a transactional id is refused (and the transaction
APIs are not advertised).
"""

from __future__ import annotations

from firth.kafka.handlers import handles
from firth.kafka.handlers.context import RequestContext
from firth.kafka.protocol.errors import ErrorCode

NO_PRODUCER = -1


@handles(22)
async def init_producer_id(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    fields = {"throttle_time": 0, "error_code": 0, "producer_id": -1, "producer_epoch": -1}
    if request.transactional_id is not None:
        fields["error_code"] = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        return ctx.respond(fields)
    allocator = ctx.broker.producer_ids
    requested_id = getattr(request, "producer_id", NO_PRODUCER)
    requested_epoch = getattr(request, "producer_epoch", NO_PRODUCER)
    if requested_id != NO_PRODUCER:
        bumped = allocator.bump_epoch(requested_id, requested_epoch)
        if bumped is None:
            fields["error_code"] = ErrorCode.INVALID_PRODUCER_EPOCH
            return ctx.respond(fields)
        fields["producer_id"], fields["producer_epoch"] = bumped
        return ctx.respond(fields)
    fields["producer_id"] = allocator.allocate()
    fields["producer_epoch"] = 0
    return ctx.respond(fields)
