"""The terminal as a user feels it: the real app, headless, against our embedded server on 127.0.0.1.

Run through ``bench/terminal.py`` (which also measures the parser alone); each part runs in a fresh
worker process (``bench/terminal_app.py --worker PART ...``) driving ``SshtuiApp`` with Textual's
``run_test()``, so one part's heap does not leak into another's RSS and a stuck part can be killed.
The embedded server runs in the parent process: its CPU is not on the app's event loop.

- ``latency``: two shell tabs on one connection. Keys are posted to the app as a terminal driver
  posts them (``events.Key``) and the clock runs until the echoed character is in the typing tab's
  screen (checked after every chunk its emulator parses); "painted" is when the widget next
  rendered that row. First idle, then while the other tab floods (``yes``, then ``cat`` of an
  SGR-coloured file in a loop); the flood tab's parse rate during the keys shows it really flowed.
- ``ctrlc``: ``yes`` in a tab, then ctrl+c; time until the last ``y`` line is parsed and until the
  prompt is back (dash's ``$ `` or ``# `` at the cursor), and a check that no ``y`` arrives after the prompt.
- ``memory``: VmRSS of the app process before, during and after ``cat``-ing FLOOD bytes of
  SGR-coloured text through a tab with the default 10,000-line scrollback.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sshtui.net.server import ServerOptions, start_server
from sshtui.net.server_auth import AuthorizedKeys
from sshtui.ssh.crypto.hostkeys import PrivateKey, openssh_public_line

TARGET_ECHO_P95_MS = 50.0
TARGET_CTRLC_MS = 200.0
TARGET_SECOND_HALF_GROWTH_MIB = 5.0
APP_SIZE = (200, 50)  # bench/terminal.py prints this size too
PROMPTS = ("$ ", "# ")  # dash's, as a user and as root
PROMPT_WIDTH = 2
LINE_KEYS = 40  # letters per comment line before enter
KEY_TIMEOUT = 10.0  # a later echo would land where the next key is looked for
FLOOD_TYPING_BUDGET = 30.0  # seconds of typing per flood; fewer than --keys if echoes are slow


# -- worker side: the app ------------------------------------------------------------------------------


def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def wait_for(
    pilot: Any, condition: Callable[[], object], timeout: float, what: str,
    state: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}" + (f" ({state()})" if state else ""))
        await pilot.pause(0.02)


def screen_row(pane: Any, y: int) -> str:
    """Row ``y`` as text, through the backend-neutral ``display()`` (pyte and avt alike)."""
    rows = pane.terminal.backend.display()
    return str(rows[y]) if 0 <= y < len(rows) else ""


def tab_state(pane: Any) -> str:
    """What a tab shows where the cursor is, and how much output waits: for a timeout's message."""
    x, y = pane.terminal.backend.cursor
    return (f"cursor {x},{y} on {screen_row(pane, y).rstrip()!r}, row above "
            f"{screen_row(pane, y - 1).rstrip()!r}, {pane.terminal.pending_bytes} bytes unparsed")


def at_prompt(pane: Any) -> bool:
    x, y = pane.terminal.backend.cursor
    return x == PROMPT_WIDTH and screen_row(pane, y).startswith(PROMPTS)


class FeedProbe:
    """Wraps a tab's emulator feed: counts bytes and runs a check after every parsed chunk."""

    def __init__(self, pane: Any) -> None:
        self.backend = pane.terminal.backend
        self._feed = self.backend.feed
        self.bytes = 0
        self.check: Callable[[bytes], None] | None = None
        self.backend.feed = self._probe

    def _probe(self, data: bytes) -> None:
        self._feed(data)
        self.bytes += len(data)
        if self.check is not None:
            self.check(data)


async def open_shell(app: Any, pilot: Any, dest: str, count: int) -> Any:
    if count == 1:
        app.connect_name(dest)
    else:
        await pilot.press("ctrl+right_square_bracket", "n")
    await wait_for(pilot, lambda: len([p for p in app.session_screen.panes() if p.channel]) >= count, 20,
                   "shell")
    pane = app.session_screen.panes()[count - 1]
    try:
        await wait_for(pilot, lambda: at_prompt(pane), 20, "prompt")
    except TimeoutError:
        shown = [row.rstrip() for row in pane.terminal.backend.display()]
        cursor = pane.terminal.backend.cursor
        raise TimeoutError(f"no prompt; cursor {cursor}, screen {shown[:4]!r}") from None
    return pane


def post_key(app: Any, key: str, character: str | None) -> None:
    from textual import events

    app.post_message(events.Key(key, character))


async def type_keys(app: Any, pilot: Any, pane: Any, count: int, gap: float, budget: float) -> dict[str, Any]:
    """Type ``count`` letters into ``pane``; per key the ms until echoed into the buffer and painted."""
    probe = FeedProbe(pane)
    terminal = pane.terminal
    loop = asyncio.get_running_loop()
    waiting: dict[str, Any] = {}
    render = terminal.render_line

    def echoed(data: bytes) -> None:
        parsed = time.perf_counter()  # before reading the screen back, which is not the app's cost
        future = waiting.get("echo")
        if future is None or future.done():
            return
        if screen_row(pane, waiting["y"])[waiting["x"] : waiting["x"] + 1] == waiting["char"]:
            future.set_result(parsed)

    def painted(y: int) -> Any:
        strip = render(y)
        echo = waiting.get("echo")
        if echo is not None and echo.done() and "painted" not in waiting and y == waiting["y"]:
            waiting["painted"] = time.perf_counter()
        return strip

    write, feed = terminal._write, terminal.feed

    def sent(data: bytes) -> None:
        waiting.setdefault("sent", time.perf_counter())
        write(data)

    def arrived(data: bytes) -> bool:
        echo = waiting.get("echo")
        if echo is not None and not echo.done() and waiting["char"].encode() in data:
            waiting.setdefault("arrived", time.perf_counter())
        return bool(feed(data))

    channel = pane.channel
    on_data = channel.on_data

    def received(data: bytes, data_type: int | None) -> None:
        echo = waiting.get("echo")
        if echo is not None and not echo.done() and waiting["char"].encode() in data:
            waiting.setdefault("received", time.perf_counter())
        on_data(data, data_type)

    probe.check = echoed
    terminal.render_line = painted
    terminal._write, terminal.feed, channel.on_data = sent, arrived, received
    stages: dict[str, list[float]] = {"sent": [], "received": [], "arrived": []}
    echo_ms: list[float] = []
    paint_ms: list[float] = []
    lost = 0
    letters = "abcdefghijklmnopqrstuvwxyz"
    typed = 0
    stop_at = time.monotonic() + budget
    try:
        while typed < count and time.monotonic() < stop_at:
            terminal.send(b"#")  # a comment line: the shell ignores it on enter
            await wait_for(pilot, lambda: terminal.backend.cursor[0] == PROMPT_WIDTH + 1, KEY_TIMEOUT,
                           "comment mark")
            for _ in range(min(LINE_KEYS, count - typed)):
                if time.monotonic() > stop_at:
                    break
                char = letters[typed % len(letters)]
                x, y = terminal.backend.cursor
                waiting.clear()
                waiting.update(char=char, x=x, y=y, echo=loop.create_future())
                start = time.perf_counter()
                post_key(app, char, char)
                try:
                    seen = await asyncio.wait_for(waiting["echo"], KEY_TIMEOUT)
                except TimeoutError:
                    lost += 1
                else:
                    echo_ms.append((seen - start) * 1e3)
                    for stage, samples in stages.items():
                        if stage in waiting:
                            samples.append((waiting[stage] - start) * 1e3)
                    deadline = time.monotonic() + 0.5
                    while "painted" not in waiting and time.monotonic() < deadline:
                        await asyncio.sleep(0.001)
                    if "painted" in waiting:
                        paint_ms.append((waiting["painted"] - start) * 1e3)
                typed += 1
                await asyncio.sleep(gap)
            post_key(app, "enter", "\r")
            await wait_for(pilot, lambda: at_prompt(pane), KEY_TIMEOUT, "prompt after enter")
    finally:
        probe.check = None
        del terminal.render_line
        terminal._write, terminal.feed = write, feed
        del channel.on_data
    # Stages, ms after the key was posted: the widget wrote it to the channel; the echo was decrypted
    # into the channel (client transport); the tab's reader handed it to the widget; then parsed.
    return {"echo_ms": echo_ms, "paint_ms": paint_ms, "lost": lost,
            **{f"{stage}_ms": samples for stage, samples in stages.items()}}


def summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "max": ordered[-1],
    }


async def part_latency(app: Any, pilot: Any, dest: str, opts: dict[str, Any]) -> dict[str, Any]:
    flood_tab = await open_shell(app, pilot, dest, 1)
    typing_tab = await open_shell(app, pilot, dest, 2)
    assert typing_tab.conn is flood_tab.conn, "both tabs must share one connection"
    app.session_screen.tabs.active = typing_tab.id or ""
    await pilot.pause()
    typing_tab.terminal.focus()
    await pilot.pause(0.2)
    idle = await type_keys(app, pilot, typing_tab, opts["idle_keys"], opts["gap"], FLOOD_TYPING_BUDGET)
    results: dict[str, Any] = {"idle": idle}
    flood_probe = FeedProbe(flood_tab)
    for name, command in (("yes", "yes"), ("sgr", f"while :; do cat {opts['flood_file']}; done")):
        flood_tab.terminal.send(command.encode() + b"\r")
        await wait_scrolled(pilot, flood_tab, 2000)
        await pilot.pause(0.5)  # the SSH window and the widget's backlog are full by now
        before, started = flood_probe.bytes, time.perf_counter()
        run = await type_keys(app, pilot, typing_tab, opts["keys"], opts["gap"], FLOOD_TYPING_BUDGET)
        run["flood_mb_s"] = (flood_probe.bytes - before) / (time.perf_counter() - started) / 1e6
        results[name] = run
        flood_tab.terminal.send(b"\x03")
        await wait_for(pilot, lambda: at_prompt(flood_tab), 20, "flood stopped", lambda: tab_state(flood_tab))
    return results


async def wait_scrolled(pilot: Any, pane: Any, lines: int) -> None:
    """Until ``lines`` more lines scrolled into the pane's history: the flood started has reached us."""
    backend = pane.terminal.backend
    mark = backend.history_pushed
    await wait_for(pilot, lambda: backend.history_pushed > mark + lines, 20, "flood output")


async def one_ctrlc(app: Any, pilot: Any, pane: Any, probe: FeedProbe) -> dict[str, Any]:
    state: dict[str, Any] = {}

    def watch(data: bytes) -> None:
        now = time.perf_counter()
        if "sent" not in state:
            return
        if "prompt" not in state:
            if b"y\r\n" in data:
                state["last_y"] = now
            if at_prompt(pane):
                state["prompt"] = now
        elif b"y\r\n" in data:
            state["late_y_bytes"] = state.get("late_y_bytes", 0) + data.count(b"y\r\n") * 3

    probe.check = watch
    pane.terminal.send(b"yes\r")
    await wait_scrolled(pilot, pane, 2000)
    await pilot.pause(0.3)  # the SSH window and the widget's backlog are full by now
    backlog = pane.terminal.pending_bytes
    state["sent"] = start = time.perf_counter()
    post_key(app, "ctrl+c", "\x03")
    try:
        await wait_for(pilot, lambda: "prompt" in state, 10, "prompt after ctrl+c")
    except TimeoutError:
        return {"timeout": True}
    await pilot.pause(0.3)  # anything after the prompt would be output that did not stop
    return {
        "prompt_ms": (state["prompt"] - start) * 1e3,
        "last_output_ms": (state.get("last_y", start) - start) * 1e3,
        "backlog_at_ctrl_c": backlog,
        "late_output_bytes": state.get("late_y_bytes", 0),
    }


async def part_ctrlc(app: Any, pilot: Any, dest: str, opts: dict[str, Any]) -> dict[str, Any]:
    pane = await open_shell(app, pilot, dest, 1)
    await pilot.pause(0.2)
    probe = FeedProbe(pane)
    runs = [await one_ctrlc(app, pilot, pane, probe) for _ in range(opts["runs"])]
    probe.check = None
    return {"runs": runs}


async def part_memory(app: Any, pilot: Any, dest: str, opts: dict[str, Any]) -> dict[str, Any]:
    pane = await open_shell(app, pilot, dest, 1)
    probe = FeedProbe(pane)
    marker = b"FLOOD-DONE-42"
    seen: dict[str, Any] = {"tail": b""}

    def watch(data: bytes) -> None:
        window = seen["tail"] + data[-64:]
        if marker in window:
            seen["done"] = True
        seen["tail"] = window[-32:]

    probe.check = watch
    await pilot.pause(0.5)
    gc.collect()
    before = rss_kib()
    repeats = max(1, opts["flood_bytes"] // opts["flood_file_bytes"])
    total = repeats * opts["flood_file_bytes"]
    # The marker is computed by the shell so its echo of the command line does not match it.
    command = f"for i in $(seq {repeats}); do cat {opts['flood_file']}; done; echo FLOOD-DONE-$((6*7))"
    pane.terminal.send(command.encode() + b"\r")
    samples: list[tuple[float, int, int]] = []
    started = time.perf_counter()
    deadline = time.monotonic() + opts["budget"]
    while "done" not in seen and time.monotonic() < deadline:
        await pilot.pause(0.25)
        samples.append((time.perf_counter() - started, probe.bytes, rss_kib()))
    seconds = time.perf_counter() - started
    gc.collect()
    return {
        "rss_before_kib": before,
        "rss_after_kib": rss_kib(),
        "rss_peak_kib": rss_kib("VmHWM"),
        "bytes_planned": total,
        "bytes_parsed": probe.bytes,
        "finished": "done" in seen,
        "seconds": seconds,
        "history_size": pane.terminal.backend.history_size,
        "columns": pane.terminal.backend.columns,
        "samples": samples,
    }


PARTS = {"latency": part_latency, "ctrlc": part_ctrlc, "memory": part_memory}


async def run_worker(part: str, port: int, home: Path, opts: dict[str, Any]) -> dict[str, Any]:
    from sshtui.ui.app import SshtuiApp, settle_heap

    app = SshtuiApp(home=home, system_config_file=None)
    settle_heap()  # as `sshtui` does before running the app
    result: dict[str, Any] | None = None
    try:
        async with app.run_test(size=APP_SIZE) as pilot:
            result = await PARTS[part](app, pilot, f"tester@127.0.0.1:{port}", opts)
    except Exception as exc:
        if result is None:
            raise
        # Closing the app while a tab still floods can fail in its teardown; the numbers are taken.
        result["teardown_error"] = f"{type(exc).__name__}: {exc}"
    assert result is not None
    return result


# -- parent side: server, workers, table ---------------------------------------------------------------


def worker_env(base: Path) -> dict[str, str]:
    env = dict(os.environ, HOME=str(base / "home"), XDG_CONFIG_HOME=str(base / "config"),
               XDG_DATA_HOME=str(base / "data"), XDG_STATE_HOME=str(base / "state"), ENV="")
    env.pop("SSH_AUTH_SOCK", None)
    return env


async def run_part(part: str, port: int, base: Path, opts: dict[str, Any], timeout: float) -> dict[str, Any]:
    out = base / f"{part}.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), "--worker", part, "--port", str(port),
        "--base", str(base), "--out", str(out), "--opts", json.dumps(opts),
        env=worker_env(base), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        os.killpg(process.pid, 9)
        await process.wait()
        return {"error": f"timed out after {timeout:.0f} s"}
    if process.returncode != 0 or not out.exists():
        return {"error": stderr.decode(errors="replace").strip().splitlines()[-1:] or "worker failed"}
    result: dict[str, Any] = json.loads(out.read_text())
    return result


async def app_benchmarks(
    parts: list[str], opts: dict[str, Any], timeouts: dict[str, float], flood_text: bytes
) -> dict[str, Any]:
    """Start the server, run each part in its worker, return their raw results."""
    host_key, user_key = PrivateKey.generate("ed25519"), PrivateKey.generate("ed25519")
    with tempfile.TemporaryDirectory(prefix="sshtui-bench-") as directory:
        base = Path(directory)
        ssh_dir = base / "home" / ".ssh"
        ssh_dir.mkdir(parents=True)
        key_path = ssh_dir / "id_ed25519"
        key_path.write_bytes(user_key.to_openssh())
        key_path.chmod(0o600)
        flood_file = base / "flood.txt"
        flood_file.write_bytes(flood_text)
        opts = dict(opts, flood_file=str(flood_file), flood_file_bytes=flood_file.stat().st_size)
        options = ServerOptions(
            [host_key], port=0, shell="/bin/sh",
            authorized_keys=AuthorizedKeys.parse(openssh_public_line(user_key.public_blob, "bench") + "\n"),
        )
        results: dict[str, Any] = {}
        async with await start_server(options) as server:
            known = f"[127.0.0.1]:{server.port} {openssh_public_line(host_key.public_blob)}\n"
            (ssh_dir / "known_hosts").write_text(known)
            for part in parts:
                results[part] = await run_part(part, server.port, base, opts, timeouts[part])
        return results


def _ms(value: float) -> str:
    return f"{value:.1f}"


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measurement, target, measured, verdict) rows."""
    rows: list[tuple[str, str, str, str]] = []
    latency = results.get("latency")
    if latency is not None:
        if "error" in latency:
            rows.append(("key-to-echo", f"p95 < {TARGET_ECHO_P95_MS:.0f} ms", str(latency["error"]), "n/a"))
        else:
            for name, label in (("idle", "idle"), ("yes", "other tab: yes"), ("sgr", "other tab: cat SGR")):
                run = latency[name]
                echo, paint = summary(run["echo_ms"]), summary(run["paint_ms"])
                flowing = f", flood {run['flood_mb_s']:.2f} MB/s" if "flood_mb_s" in run else ""
                lost = f", {run['lost']} lost" if run["lost"] else ""
                measured = (f"p50 {_ms(echo['p50'])} / p95 {_ms(echo['p95'])} ms "
                            f"(painted p95 {_ms(paint['p95'])}; n={len(run['echo_ms'])}{lost}{flowing})")
                ok = echo["p95"] < TARGET_ECHO_P95_MS and not run["lost"]
                target = f"p95 < {TARGET_ECHO_P95_MS:.0f} ms" if name != "idle" else "(reference)"
                rows.append((f"key-to-echo, {label}", target, measured,
                             ("meets" if ok else "MISSES") if name != "idle" else ""))
    ctrlc = results.get("ctrlc")
    if ctrlc is not None:
        target = f"median < {TARGET_CTRLC_MS:.0f} ms"
        if "error" in ctrlc:
            rows.append(("ctrl+c stops yes", target, str(ctrlc["error"]), "n/a"))
        else:
            done = [run for run in ctrlc["runs"] if "prompt_ms" in run]
            prompt = statistics.median(run["prompt_ms"] for run in done) if done else float("nan")
            last = statistics.median(run["last_output_ms"] for run in done) if done else float("nan")
            worst = max((run["prompt_ms"] for run in done), default=float("nan"))
            late = sum(run["late_output_bytes"] for run in done)
            backlog = statistics.median(run["backlog_at_ctrl_c"] for run in done) if done else 0
            measured = (f"prompt {_ms(prompt)} ms (max {_ms(worst)}), last y {_ms(last)} ms; "
                        f"n={len(done)}/{len(ctrlc['runs'])}, unparsed at ^C {backlog / 1024:.0f} KiB"
                        + (f", {late} B after prompt" if late else ""))
            ok = prompt < TARGET_CTRLC_MS and len(done) == len(ctrlc["runs"]) and not late
            rows.append(("ctrl+c stops yes", target, measured, "meets" if ok else "MISSES"))
    memory = results.get("memory")
    if memory is not None:
        target = f"2nd-half growth < {TARGET_SECOND_HALF_GROWTH_MIB:.0f} MiB"
        if "error" in memory:
            rows.append(("RSS under flood", target, str(memory["error"]), "n/a"))
        else:
            samples = memory["samples"]
            halfway = [s for s in samples if s[1] >= memory["bytes_parsed"] / 2] or samples
            half_rss = halfway[0][2] if halfway else memory["rss_before_kib"]
            growth = (memory["rss_after_kib"] - half_rss) / 1024
            measured = (f"{memory['rss_before_kib'] / 1024:.0f} -> {half_rss / 1024:.0f} (half) -> "
                        f"{memory['rss_after_kib'] / 1024:.0f} MiB, "
                        f"peak {memory['rss_peak_kib'] / 1024:.0f}; "
                        f"{memory['bytes_parsed'] / 1e6:.0f} MB in {memory['seconds']:.0f} s, "
                        f"history {memory['history_size']} lines x {memory['columns']} cols"
                        + ("" if memory["finished"] else " (time budget hit)"))
            ok = growth < TARGET_SECOND_HALF_GROWTH_MIB and memory["history_size"] <= 10_000
            rows.append(("RSS, 10k-line scrollback", target, measured, "meets" if ok else "MISSES"))
    return rows


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, target, measured, verdict in rows:
        print(f"{name:<{widths[0]}}  {target:<{widths[1]}}  {verdict:<6}  {measured}")


def worker_main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=sorted(PARTS), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--opts", required=True)
    args = parser.parse_args()
    result = asyncio.run(run_worker(args.worker, args.port, args.base / "home", json.loads(args.opts)))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    worker_main()
