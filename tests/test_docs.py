"""The documentation that is generated stays in step with the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_cli_reference_is_up_to_date():
    spec = importlib.util.spec_from_file_location("make_cli_reference",
                                                  DOCS / "make_cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == module.reference(), (
        "docs/cli.md is stale: run python docs/make_cli_reference.py")
