"""``sshtui exec`` run as the user runs it: a child process of this checkout, without the user's agent
or askpass, killed if it outlives its time."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


async def run_exec(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 45
) -> tuple[int, bytes, bytes]:
    """``python -m sshtui exec ARGS``: its exit code, stdout and stderr."""
    child_env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSHTUI_ASKPASS")}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), child_env.get("PYTHONPATH")]))
    child_env.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sshtui", "exec", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=child_env, cwd=cwd, start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stdout, stderr
