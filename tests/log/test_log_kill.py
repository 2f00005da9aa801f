"""A writer process killed with SIGKILL mid-append: reopening keeps every flushed offset and
every batch in the log is whole and valid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from firth.log import Log, LogConfig
from firth.wire.recordbatch import validate

WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from logbatches import make_batch
    from firth.log import Log, LogConfig

    log = Log.open(sys.argv[1], LogConfig(segment_bytes=64 * 1024, index_interval_bytes=512))
    i = 0
    while True:
        log.append(*make_batch(1 + i % 7, payload_size=50 + i % 300))
        i += 1
        if i % 50 == 0:
            print(log.flush(), flush=True)
    """
)


def test_sigkill_keeps_flushed_offsets(tmp_path):
    directory = str(tmp_path / "p")
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, directory, os.path.dirname(__file__)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    flushed = 0
    deadline = time.monotonic() + 30
    while flushed < 20_000 and time.monotonic() < deadline:
        line = process.stdout.readline()
        assert line, "writer exited early"
        flushed = int(line)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert flushed >= 20_000

    with Log.open(directory, LogConfig(segment_bytes=64 * 1024, index_interval_bytes=512)) as log:
        assert not log.load_report.clean_shutdown
        assert log.log_end_offset >= flushed
        assert len(log.segment_base_offsets) > 5
        expected = 0
        for header, data in log.batches(0):
            assert validate(data).base_offset == header.base_offset == expected
            expected = header.next_offset
        assert expected == log.log_end_offset
