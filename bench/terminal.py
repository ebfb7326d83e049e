"""Terminal emulator throughput and frame cost: what bounds how fast the terminal widget can show output.

    python bench/terminal.py [--size 2M] [--repeat 3] [--backends raw-pyte,pyte,avt] [--json FILE]

Parse throughput (MB/s) is measured for three workloads fed in 64 KiB reads, as an SSH channel delivers
them, on a 200x50 screen:

- ``plain``: 118-column lines of text, the shape of ``cat`` on a log file;
- ``sgr``: short words each in its own 256-colour or bold colour, the shape of ``ls --color`` or a
  coloured compiler log (the issue's target: >= 30 MB/s);
- ``yes``: ``y\\r\\n`` repeated, the worst case of one scroll per three bytes.

Backends: ``raw-pyte`` is pyte's own Screen and ByteStream (the baseline the research measured),
``pyte`` is our PyteBackend (pyte's cells with our parser and fast paths), ``avt`` is our AvtBackend,
the app's default (asciinema's native ``avt`` core plus our mode scanner for the modes, replies,
titles and bell it lacks, and our own scrollback).

Frame cost is the time to turn a full 200x50 screen of coloured text into Textual ``Strip``s, which is
what ``TerminalView.render_line`` does for every dirty row. Not a test: run by hand on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyte
from rich.style import Style
from textual.strip import Strip

from sshtui.ui.terminal.avt_backend import AvtBackend
from sshtui.ui.terminal.backend import PyteBackend

COLUMNS, ROWS = 200, 50
READ_SIZE = 64 * 1024
TARGET_SGR_MB_S = 30.0
APP_COLUMNS, APP_ROWS = 200, 50


class Feedable(Protocol):
    def feed(self, data: bytes) -> None: ...


# -- workloads ---------------------------------------------------------------------------------------


def plain_text(size: int) -> bytes:
    line = (("The quick brown fox jumps over the lazy dog 0123456789 " * 3)[:118] + "\r\n").encode()
    return line * (size // len(line) + 1)


def sgr_text(size: int) -> bytes:
    parts: list[str] = []
    total, index = 0, 0
    while total < size:
        part = f"\x1b[38;5;{index % 256}mword{index % 7} \x1b[1;3{index % 8}mbold\x1b[0m "
        if index % 12 == 11:
            part += "\r\n"
        parts.append(part)
        total += len(part)
        index += 1
    return "".join(parts).encode()


def yes_flood(size: int) -> bytes:
    return b"y\r\n" * (size // 3)


WORKLOADS: dict[str, Callable[[int], bytes]] = {"plain": plain_text, "sgr": sgr_text, "yes": yes_flood}


# -- backends ----------------------------------------------------------------------------------------


class RawPyte:
    """pyte as shipped: ByteStream into Screen."""

    def __init__(self) -> None:
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)

    def feed(self, data: bytes) -> None:
        self.stream.feed(data)


BACKENDS: dict[str, Callable[[], Any]] = {
    "raw-pyte": RawPyte,
    "pyte": lambda: PyteBackend(COLUMNS, ROWS),
    "avt": lambda: AvtBackend(COLUMNS, ROWS),
}


def make_backend(name: str) -> Any:
    if name not in BACKENDS:
        raise SystemExit(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    return BACKENDS[name]()


# -- measurements ------------------------------------------------------------------------------------


def parse_seconds(backend_name: str, data: bytes) -> float:
    backend: Feedable = make_backend(backend_name)
    view = memoryview(data)
    start = time.perf_counter()
    for offset in range(0, len(data), READ_SIZE):
        backend.feed(bytes(view[offset : offset + READ_SIZE]))
    return time.perf_counter() - start


def frame_seconds(backend_name: str, frames: int) -> float:
    """Median time to build Strips for every row of a full screen of coloured text."""
    backend = make_backend(backend_name)
    if not hasattr(backend, "row_segments"):
        return float("nan")
    backend.feed(sgr_text(COLUMNS * ROWS * 2))
    base = Style(color="#e0e0e0", bgcolor="#121212")
    backend.style_of.set_base(base)
    timings = []
    for _ in range(frames):
        start = time.perf_counter()
        for y in range(ROWS):
            Strip(backend.row_segments(y)).adjust_cell_length(COLUMNS, base)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def parse_size(text: str) -> int:
    multiplier = {"K": 1024, "M": 1024 * 1024}.get(text[-1:].upper(), 1)
    return int(text.rstrip("KkMm")) * multiplier


def parser_benchmarks(size: int, repeat: int, backend_names: str) -> dict[str, dict[str, float]]:
    backends = [name for name in backend_names.split(",") if name]
    results: dict[str, dict[str, float]] = {}
    print(f"{COLUMNS}x{ROWS} screen, {READ_SIZE // 1024} KiB reads, median of {repeat}; "
          f"Python {platform.python_version()} on {platform.machine()}")
    print(f"{'backend':<10} {'plain MB/s':>11} {'sgr MB/s':>9} {'yes MB/s':>9} {'frame ms':>9}")
    for name in backends:
        row: dict[str, float] = {}
        for workload, build in WORKLOADS.items():
            # The yes flood is far slower per byte: a quarter of the size keeps the run short.
            data = build(size // 4 if workload == "yes" else size)
            seconds = statistics.median(parse_seconds(name, data) for _ in range(repeat))
            row[workload] = len(data) / seconds / 1e6
        row["frame_ms"] = frame_seconds(name, 20) * 1e3
        results[name] = row
        print(
            f"{name:<10} {row['plain']:>11.2f} {row['sgr']:>9.2f} {row['yes']:>9.2f} {row['frame_ms']:>9.2f}"
        )
    best_sgr = max(results.values(), key=lambda row: row["sgr"])["sgr"] if results else 0.0
    verdict = "meets" if best_sgr >= TARGET_SGR_MB_S else "misses"
    print(f"SGR flood target {TARGET_SGR_MB_S:.0f} MB/s: best backend {verdict} it ({best_sgr:.1f} MB/s)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="2M", help="bytes per workload (K/M suffixes), default 2M")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--backends", default="raw-pyte,pyte,avt", help="'' skips the parser part")
    parser.add_argument("--app-parts", default="latency,ctrlc,memory",
                        help="parts run in the real app against the embedded server; '' skips them")
    parser.add_argument("--keys", type=int, default=200, help="keystrokes per flood in the latency part")
    parser.add_argument("--idle-keys", type=int, default=40, help="keystrokes with no flood, for reference")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between keystrokes")
    parser.add_argument("--ctrlc-runs", type=int, default=10)
    parser.add_argument("--flood", default="200M", help="bytes cat-ed through a tab in the memory part")
    parser.add_argument("--flood-seconds", type=float, default=90.0, help="time budget of the memory flood")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per latency or ctrl+c part")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    started = time.monotonic()

    results: dict[str, Any] = {}
    if args.backends:
        results["parser"] = parser_benchmarks(parse_size(args.size), args.repeat, args.backends)
    parts = [part for part in args.app_parts.split(",") if part]
    if parts:
        from bench.terminal_app import app_benchmarks, print_table, table_rows

        opts = {
            "keys": args.keys, "idle_keys": args.idle_keys, "gap": args.gap_ms / 1e3,
            "runs": args.ctrlc_runs, "flood_bytes": parse_size(args.flood),
            "budget": args.flood_seconds,
        }
        timeouts = {"latency": args.timeout, "ctrlc": args.timeout, "memory": args.flood_seconds + 30}
        print(f"\nThe app ({APP_COLUMNS}x{APP_ROWS}, headless) against the embedded server on 127.0.0.1:")
        app = asyncio.run(app_benchmarks(parts, opts, timeouts, sgr_text(8 * 1024 * 1024)))
        results["app"] = app
        print_table(table_rows(app))
    print(f"({time.monotonic() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
