"""Report how many inputs each fuzz target ran (the figures in docs/reliability.md come from here);
``SSHTUI_FUZZ_REPORT=FILE`` also writes them as JSON."""

from __future__ import annotations

import json
import os

import pytest

from tests.fuzz.targets import RUNS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RUNS:
        return
    terminalreporter.section("fuzz inputs run per target")
    for name, count in sorted(RUNS.items()):
        terminalreporter.write_line(f"{name:>14}: {count}")
    report = os.environ.get("SSHTUI_FUZZ_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as handle:
            json.dump(dict(sorted(RUNS.items())), handle, indent=2)
