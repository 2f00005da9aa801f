"""settle_heap: the collector settings `firth serve` applies once per process.

Run in a child interpreter so this test process keeps its own collector settings."""

import subprocess
import sys
import textwrap


def test_settle_heap_freezes_startup_objects_and_spaces_full_collections_once() -> None:
    script = textwrap.dedent(
        """
        import gc
        from firth.heap import FULL_COLLECTION_EVERY, settle_heap
        assert gc.get_freeze_count() == 0
        young, middle, full = gc.get_threshold()
        assert full != FULL_COLLECTION_EVERY
        assert settle_heap() is True
        assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
        assert gc.get_threshold() == (young, middle, FULL_COLLECTION_EVERY)
        gc.set_threshold(young, middle, full)
        assert settle_heap() is False
        assert gc.get_threshold() == (young, middle, full)
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
