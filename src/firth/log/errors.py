"""The storage engine's error tree.

Every error the log raises is a `LogError`. Each class carries `error_code`, the Kafka protocol
error number for the condition: the log stores Kafka record batches, so Kafka's numbering is its
native vocabulary, and the Kafka front end answers with it directly. Other front ends map the
classes (not the numbers) to their own codes.

Operating-system errors (`OSError` from open, write, fsync, ...) are translated to
`StorageError` at the public methods of `Log`; nothing else in this package catches them.
"""

from __future__ import annotations


class LogError(Exception):
    """Base of all storage engine errors."""

    error_code: int = 56  # KAFKA_STORAGE_ERROR
    retriable: bool = False


class OffsetOutOfRange(LogError):
    """A read or truncation asked for an offset outside [log_start_offset, log_end_offset]."""

    error_code = 1  # OFFSET_OUT_OF_RANGE

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(
            f"offset {offset} outside the log's range [{log_start_offset}, {log_end_offset}]"
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class RecordTooLarge(LogError):
    """A batch larger than `LogConfig.max_message_bytes`."""

    error_code = 10  # MESSAGE_TOO_LARGE


class CorruptBatch(LogError):
    """A batch handed to `append` whose header disagrees with its bytes."""

    error_code = 2  # CORRUPT_MESSAGE


class StorageError(LogError):
    """The operating system failed an I/O operation; the log may need to be reopened."""

    error_code = 56  # KAFKA_STORAGE_ERROR


class LogClosed(LogError):
    """An operation on a log after `close()` or `delete()`."""

    error_code = 56  # KAFKA_STORAGE_ERROR
