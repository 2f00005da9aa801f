"""Random operation sequences against a list-of-batches model, with reopen and crashes."""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firth.log import Log, LogConfig, OffsetOutOfRange
from firth.wire.recordbatch import parse_header
from tests.log.logbatches import make_batch

CONFIG = LogConfig(segment_bytes=1500, index_interval_bytes=150, retention_ms=-1)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 5), st.integers(0, 400), st.integers(-5, 50)),
        st.tuples(st.just("read"), st.floats(0, 1), st.integers(1, 3000)),
        st.tuples(st.just("roll")),
        st.tuples(st.just("reopen")),
        st.tuples(st.just("crash")),
        st.tuples(st.just("truncate"), st.floats(0, 1)),
        st.tuples(st.just("retain"), st.integers(0, 6000)),
    ),
    max_size=40,
)


def expected_read(batches: list[tuple[int, int, bytes]], offset: int, max_bytes: int) -> bytes:
    i = next(i for i, (base, nxt, _) in enumerate(batches) if base <= offset < nxt)
    out = [batches[i][2]]
    total = len(out[0])
    for _, _, data in batches[i + 1 :]:
        if total + len(data) > max_bytes:
            break
        out.append(data)
        total += len(data)
    return b"".join(out)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=operations)
def test_log_matches_model(ops, monkeypatch):
    # Content, not durability, is under test: skip the fsyncs of the many reopens.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    monkeypatch.setattr(os, "fdatasync", lambda fd: None)
    with tempfile.TemporaryDirectory() as root:
        directory = root + "/p"
        log = Log.open(directory, CONFIG)
        batches: list[tuple[int, int, bytes]] = []  # (base, next, bytes) of live batches
        start = end = 0
        ts = 1_000_000
        try:
            for op in ops:
                kind = op[0]
                if kind == "append":
                    _, records, payload, step = op
                    ts += step
                    batch, header = make_batch(records, timestamp=ts, payload_size=payload)
                    base = log.append(batch, header)
                    assert base == end
                    end = parse_header(batch).next_offset
                    batches.append((base, end, bytes(batch)))
                elif kind == "read" and batches:
                    offset = start + int(op[1] * (end - start - 1))
                    got = log.read(offset, op[2]).read_bytes()
                    assert got == expected_read(batches, offset, op[2])
                elif kind == "roll":
                    log.roll()
                elif kind == "reopen":
                    log.close()
                    log = Log.open(directory, CONFIG)
                elif kind == "crash":
                    log.abandon()  # unflushed bytes survive in the page cache, so all stays
                    log = Log.open(directory, CONFIG)
                elif kind == "truncate" and batches:
                    i = int(op[1] * (len(batches) - 1))
                    base, nxt, _ = batches[i]
                    assert log.truncate_to(nxt - 1) == base
                    del batches[i:]
                    end = base
                elif kind == "retain":
                    log.update_config(
                        LogConfig(
                            segment_bytes=1500,
                            index_interval_bytes=150,
                            retention_ms=-1,
                            retention_bytes=op[1],
                        )
                    )
                    log.enforce_retention()
                    log.update_config(CONFIG)
                    start = log.log_start_offset
                    assert start == end or any(b == start for b, _, _ in batches)
                    batches = [b for b in batches if b[0] >= start]
                assert (log.log_start_offset, log.log_end_offset) == (start, end)
                whole = log.read(start, 10**9).read_bytes() if end > start else b""
                assert whole == b"".join(data for _, _, data in batches)
                if start > 0:
                    try:
                        log.read(start - 1, 10)
                        raise AssertionError("read below the log start succeeded")
                    except OffsetOutOfRange:
                        pass
        finally:
            log.close()
