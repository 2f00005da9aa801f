"""Firth: a message broker and event store.

One Python process that is a Kafka-compatible log broker (Kafka wire protocol), a
RabbitMQ-compatible queue broker (AMQP 0-9-1) and an event store, all over one segmented,
append-only log engine. See docs/architecture.md for the map of the code.
"""

__version__ = "0.1.0"
