"""The broker core's error tree.

The core is protocol-neutral, but every error it raises carries the Kafka error code that
names the same condition (Kafka's numbering is the most complete catalogue of log-broker
errors); the AMQP front end maps these to its own reply codes where it needs them.
"""

from __future__ import annotations


class BrokerError(Exception):
    code: int = -1  # UNKNOWN_SERVER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownTopicOrPartition(BrokerError):
    code = 3


class InvalidTopic(BrokerError):
    code = 17


class TopicAlreadyExists(BrokerError):
    code = 36


class InvalidPartitions(BrokerError):
    code = 37


class InvalidReplicationFactor(BrokerError):
    code = 38


class InvalidConfig(BrokerError):
    code = 40


class InvalidRequest(BrokerError):
    code = 42


class StorageError(BrokerError):
    code = 56  # KAFKA_STORAGE_ERROR
