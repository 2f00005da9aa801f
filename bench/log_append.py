"""Microbenchmark of the storage engine's hot paths: append (with and without fsync) and read.

Prints one table: appends/s and MB/s for 16 KiB batches (about 160 records of 100 bytes) with
no flush, with a synchronous flush after every append (the worst case), and with a flush loop
on a worker thread while the main thread appends (group commit, the broker's shape); then
1 MiB reads (`Log.read` + `read_bytes`) of the same data.

    python bench/log_append.py [--seconds 3] [--batch-bytes 16384] [--dir PATH]

The directory defaults to a temporary one beside the current directory (so on the same disk as
the project, not on a tmpfs).
"""

from __future__ import annotations

import argparse
import os
import struct
import tempfile
import threading
import time

import crc32c

from firth.log import Log, LogConfig
from firth.wire.recordbatch import BatchHeader, parse_header

RECORD_BYTES = 100


def make_batch(size: int) -> tuple[bytearray, BatchHeader]:
    records = max(1, (size - 61) // (RECORD_BYTES + 10))
    body = os.urandom(size - 61)
    head = struct.pack(
        ">qiibIhiqqqhii",
        0,
        size - 12,
        0,
        2,
        0,
        0,
        records - 1,
        int(time.time() * 1000),
        int(time.time() * 1000),
        -1,
        -1,
        -1,
        records,
    )
    batch = bytearray(head + body)
    struct.pack_into(">I", batch, 17, crc32c.crc32c(memoryview(batch)[21:]))
    return batch, parse_header(batch)


def run_raw_writes(path: str, batch: bytearray, seconds: float) -> tuple[int, float]:
    """The ceiling: bare os.write of the same bytes on an O_APPEND descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    try:
        while True:
            for _ in range(64):
                os.write(fd, batch)
            count += 64
            if time.perf_counter() >= deadline:
                break
        return count, time.perf_counter() - start
    finally:
        os.close(fd)
        os.unlink(path)


def run_appends(
    log: Log, batch: bytearray, header: BatchHeader, seconds: float, flush_each: bool
) -> tuple[int, float]:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(64):
            log.append(batch, header)
            if flush_each:
                log.flush()
        count += 64
        if time.perf_counter() >= deadline:
            break
    return count, time.perf_counter() - start


def run_group_commit(
    log: Log, batch: bytearray, header: BatchHeader, seconds: float
) -> tuple[int, float, int]:
    stop = threading.Event()
    flushes = 0

    def flusher() -> None:
        nonlocal flushes
        flushed = log.flushed_offset
        while not stop.is_set():
            if log.flush() > flushed:
                flushed = log.flushed_offset
                flushes += 1
            else:
                time.sleep(0.0002)  # nothing new: a real group commit would wait on an event

    thread = threading.Thread(target=flusher)
    thread.start()
    count, elapsed = run_appends(log, batch, header, seconds, flush_each=False)
    stop.set()
    thread.join()
    log.flush()
    return count, elapsed, flushes


def run_reads(log: Log, seconds: float, max_bytes: int) -> tuple[int, int, float]:
    end = log.log_end_offset
    offset = log.log_start_offset
    reads = total = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(16):
            data = log.read(offset, max_bytes).read_bytes()
            total += len(data)
            reads += 1
            offset += 997
            if offset >= end:
                offset = log.log_start_offset
    return reads, total, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch-bytes", type=int, default=16 * 1024)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    batch, header = make_batch(args.batch_bytes)
    config = LogConfig(segment_bytes=256 * 1024 * 1024, retention_ms=-1)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir or os.getcwd(), prefix=".bench-log-") as root:
        modes = (
            ("raw os.write (ceiling)", "raw"),
            ("append, no flush", "none"),
            ("append + flush each", "each"),
            ("append, flush thread", "group"),
        )
        read_log: Log | None = None
        for name, mode in modes:
            os.sync()  # start each mode without the previous one's dirty pages in writeback
            cpu = time.process_time()
            if mode == "raw":
                count, elapsed = run_raw_writes(os.path.join(root, "raw"), batch, args.seconds)
                rows.append(_row(name, count, elapsed, cpu, batch, header, ""))
                continue
            log = Log.open(os.path.join(root, mode), config)
            extra = ""
            if mode == "group":
                count, elapsed, flushes = run_group_commit(log, batch, header, args.seconds)
                extra = f"{count / max(flushes, 1):.1f} appends/fsync"
            else:
                count, elapsed = run_appends(log, batch, header, args.seconds, mode == "each")
            rows.append(_row(name, count, elapsed, cpu, batch, header, extra))
            if mode == "none":
                read_log = log
            else:
                log.delete()
        assert read_log is not None
        cpu = time.process_time()
        reads, total, elapsed = run_reads(read_log, args.seconds, 1024 * 1024)
        rows.append(
            (
                "read 1 MiB + read_bytes",
                f"{reads / elapsed:,.0f}",
                f"{total / elapsed / 1e6:,.0f}",
                "",
                f"{(time.process_time() - cpu) / reads * 1e6:.1f}",
                "reads/s",
            )
        )
        read_log.close()
    print(f"batch {len(batch)} bytes, {header.records_count} records of ~{RECORD_BYTES} bytes")
    print(f"{'mode':<24} {'ops/s':>8} {'MB/s':>6} {'records/s':>10} {'cpu µs/op':>9}  note")
    for name, rate, mbps, records, cpu_us, extra in rows:
        print(f"{name:<24} {rate:>8} {mbps:>6} {records:>10} {cpu_us:>9}  {extra}")


def _row(
    name: str,
    count: int,
    elapsed: float,
    cpu_start: float,
    batch: bytearray,
    header: BatchHeader,
    extra: str,
) -> tuple[str, str, str, str, str, str]:
    rate = count / elapsed
    cpu_us = (time.process_time() - cpu_start) / count * 1e6
    return (
        name,
        f"{rate:,.0f}",
        f"{rate * len(batch) / 1e6:,.0f}",
        f"{rate * header.records_count:,.0f}",
        f"{cpu_us:.1f}",
        extra,
    )


if __name__ == "__main__":
    main()
