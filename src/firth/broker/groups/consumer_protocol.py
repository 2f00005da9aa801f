"""The one thing the coordinator reads inside protocol metadata: a consumer's subscribed topics.

Protocol metadata is relayed as opaque bytes, except that OffsetDelete must refuse to delete the
offsets of a topic a live consumer group is subscribed to, and the subscription is only known
from the members' metadata. For protocol type "consumer" that metadata is Kafka's
ConsumerProtocolSubscription (every version starts the same way):

    version int16 | topics: count int32, each int16 length + UTF-8 | user data, owned partitions…

Only the topic list is parsed; anything after it is ignored.
"""

from __future__ import annotations

import struct

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


def subscribed_topics(metadata: bytes) -> set[str] | None:
    """Topics named in a consumer subscription, or None if the bytes are not one."""
    try:
        pos = _I16.size  # version: all versions share the topic list layout
        (count,) = _I32.unpack_from(metadata, pos)
        pos += _I32.size
        if count < 0 or count > len(metadata):
            return None
        topics = set()
        for _ in range(count):
            (size,) = _I16.unpack_from(metadata, pos)
            pos += _I16.size
            if size < 0 or pos + size > len(metadata):
                return None
            topics.add(metadata[pos : pos + size].decode())
            pos += size
        return topics
    except (struct.error, UnicodeDecodeError):
        return None
