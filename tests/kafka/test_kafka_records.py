"""Record batch builder/decoder: round trips in every codec, and interop with client libraries."""

from __future__ import annotations

import struct

import cramjam
import pytest
from aiokafka.record.default_records import DefaultRecordBatch as AioBatch
from aiokafka.record.default_records import DefaultRecordBatchBuilder as AioBuilder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch as KpBatch
from kafka.record.default_records import DefaultRecordBatchBuilder as KpBuilder

from firth.kafka.protocol.records import (
    COMPRESSION_NAMES,
    HEADER_SIZE,
    Record,
    RecordDecodeError,
    build_batch,
    decode_batch,
    decode_records,
    decompress,
    encode_record,
)
from firth.wire.recordbatch import BatchError, compute_crc, validate

CODECS = sorted(COMPRESSION_NAMES)
BASE_TS = 1_700_000_000_000

RECORDS = [
    Record(0, 0, None, b"first", ()),
    Record(1, 5, b"key-1", b"v" * 5000, (("trace", b"abc"), ("empty", None))),
    Record(2, -3, b"", None, (("h", b""),)),
]


@pytest.mark.parametrize("codec", CODECS, ids=[COMPRESSION_NAMES[c] for c in CODECS])
def test_round_trip_in_every_codec(codec: int) -> None:
    data = build_batch(
        RECORDS,
        compression=codec,
        base_timestamp=BASE_TS,
        producer_id=42,
        producer_epoch=3,
        base_sequence=7,
        transactional=True,
    )
    header = validate(data)  # the shared header codec accepts it: length, magic, CRC
    assert header.compression == codec
    assert header.records_count == 3 and header.last_offset_delta == 2
    assert header.max_timestamp == BASE_TS + 5
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 7)
    assert header.is_transactional and not header.is_control
    decoded_header, records = decode_batch(data)
    assert decoded_header == header
    assert records == RECORDS


record_strategy = st.builds(
    Record,
    offset_delta=st.just(0),
    timestamp_delta=st.integers(-(2**40), 2**40),
    key=st.one_of(st.none(), st.binary(max_size=30)),
    value=st.one_of(st.none(), st.binary(max_size=300)),
    headers=st.lists(
        st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=8))), max_size=3
    ).map(tuple),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(record_strategy, min_size=1, max_size=6), st.sampled_from(CODECS))
def test_round_trip_of_arbitrary_records(records: list[Record], codec: int) -> None:
    records = [
        Record(i, r.timestamp_delta, r.key, r.value, r.headers) for i, r in enumerate(records)
    ]
    _, decoded = decode_batch(build_batch(records, compression=codec, base_timestamp=BASE_TS))
    assert decoded == records


def test_raw_snappy_from_librdkafka_decodes_too() -> None:
    section = b"".join(encode_record(r) for r in RECORDS)
    raw = bytes(cramjam.snappy.compress_raw(section))
    data = bytearray(build_batch(RECORDS, compression=2, base_timestamp=BASE_TS))
    data[HEADER_SIZE:] = raw
    struct.pack_into(">i", data, 8, len(data) - 12)
    struct.pack_into(">I", data, 17, compute_crc(data, 0, len(data)))
    assert decode_batch(bytes(data))[1] == RECORDS


def test_corrupt_crc_is_rejected() -> None:
    data = bytearray(build_batch(RECORDS, base_timestamp=BASE_TS))
    data[-1] ^= 0xFF
    with pytest.raises(BatchError):
        decode_batch(bytes(data))


def test_corrupt_compressed_data_is_a_record_decode_error() -> None:
    with pytest.raises(RecordDecodeError):
        decode_records(b"\x7f", 1)
    for codec in (1, 2, 3, 4):
        with pytest.raises(RecordDecodeError):
            decompress(codec, b"\x00\x01garbage-not-compressed")


def test_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError):
        build_batch([], base_timestamp=BASE_TS)


# --- interop with the client libraries' own record batch code ---------------------------------

VALUES = [b"value-%d-" % i * 40 for i in range(5)]  # compressible, so clients do compress


def _client_records() -> list[tuple[int, int, bytes | None, bytes, list[tuple[str, bytes]]]]:
    return [
        (i, BASE_TS + i * 3, None if i == 0 else b"k%d" % i, VALUES[i], [("n", b"%d" % i)])
        for i in range(len(VALUES))
    ]


def _check_ours_decodes(data: bytes, codec: int) -> None:
    header, records = decode_batch(data)
    assert header.compression == codec
    assert header.base_timestamp == BASE_TS
    assert [
        (r.offset_delta, header.base_timestamp + r.timestamp_delta, r.key, r.value, list(r.headers))
        for r in records
    ] == _client_records()


def _ours() -> list[Record]:
    return [
        Record(offset, ts - BASE_TS, key, value, tuple(headers))
        for offset, ts, key, value, headers in _client_records()
    ]


def test_kafka_python_batch_decodes_with_ours() -> None:
    builder = KpBuilder(
        magic=2,
        compression_type=1,
        is_transactional=False,
        producer_id=9,
        producer_epoch=0,
        base_sequence=0,
        batch_size=1 << 20,
    )
    for offset, ts, key, value, headers in _client_records():
        builder.append(offset, timestamp=ts, key=key, value=value, headers=headers)
    _check_ours_decodes(bytes(builder.build()), 1)


def test_kafka_python_decodes_our_batches() -> None:
    data = build_batch(_ours(), compression=1, base_timestamp=BASE_TS)
    batch = KpBatch(data)
    assert batch.validate_crc()
    got = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]
    assert got == _client_records()


@pytest.mark.parametrize("codec", CODECS, ids=[COMPRESSION_NAMES[c] for c in CODECS])
def test_aiokafka_batch_decodes_with_ours(codec: int) -> None:
    builder = AioBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset, ts, key, value, headers in _client_records():
        builder.append(offset, timestamp=ts, key=key, value=value, headers=headers)
    _check_ours_decodes(bytes(builder.build()), codec)


@pytest.mark.parametrize("codec", CODECS, ids=[COMPRESSION_NAMES[c] for c in CODECS])
def test_aiokafka_decodes_our_batches(codec: int) -> None:
    data = build_batch(_ours(), compression=codec, base_timestamp=BASE_TS)
    batch = AioBatch(data)
    assert batch.validate_crc()
    assert batch.compression_type == codec
    got = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]
    assert got == _client_records()


def test_decode_batch_whole_truncated_and_with_trailing_data() -> None:
    data = build_batch(RECORDS, compression=1, base_timestamp=BASE_TS)
    assert decode_batch(data + b"next batch bytes")[1] == RECORDS
    assert decode_batch(b"prefix" + data, 6)[1] == RECORDS
    for end in range(len(data)):
        with pytest.raises(BatchError):
            decode_batch(data[:end])
