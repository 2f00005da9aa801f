"""Loads examples/bank_account.py as a module for the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bank_account.py"


def load():  # type: ignore[no-untyped-def]
    if "bank_account" in sys.modules:
        return sys.modules["bank_account"]
    spec = importlib.util.spec_from_file_location("bank_account", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bank_account"] = module
    spec.loader.exec_module(module)
    return module
