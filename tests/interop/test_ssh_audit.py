"""ssh-audit's client audit (``ssh-audit -c``) of the algorithms ``sshtui exec`` offers.

ssh-audit listens on every interface and has no bind option, so it runs inside a new network
namespace that holds nothing but a loopback interface (``unshare -rn``): nothing can reach it and
it can reach nothing but 127.0.0.1. It reads our banner and KEXINIT, answers with a canned KEXINIT
and hangs up, so the client's own exit status is not the point; ssh-audit's JSON report (``-j``) and
exit status (0 clean, 2 warnings, 3 failures) are.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PORT = 2299
# The strict profile of docs/reliability.md: post-quantum hybrid key exchange only, EtM MACs only.
STRICT_OPTIONS = (
    "-o", "KexAlgorithms=mlkem768x25519-sha256",
    "-o", "MACs=hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
)
SCRIPT = r"""
set -u
ip link set lo up || exit 90
"$AUDIT" -c -p "$PORT" -t 20 -j > "$OUT/audit.json" 2> "$OUT/audit.err" &
audit=$!
sleep 1.5
"$PYTHON" -m sshtui exec -p "$PORT" -o StrictHostKeyChecking=no -o "UserKnownHostsFile=$OUT/known_hosts" \
    -o BatchMode=yes -o ConnectTimeout=5 "$@" probe@127.0.0.1 true > "$OUT/client.txt" 2>&1
wait "$audit"
echo $? > "$OUT/audit.rc"
"""


def audit(tmp_path: Path, *client_options: str) -> tuple[int, dict[str, Any]]:
    auditor = shutil.which("ssh-audit")
    unshare = shutil.which("unshare")
    if auditor is None:
        pytest.skip("ssh-audit is not installed (pip install ssh-audit)")
    if unshare is None or shutil.which("ip") is None:
        pytest.skip("unshare and ip are needed to isolate ssh-audit's listener")
    if subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("user namespaces are not available here: cannot isolate ssh-audit's listener")
    env = {**os.environ, "AUDIT": auditor, "PORT": str(PORT), "OUT": str(tmp_path), "PYTHON": sys.executable,
           "HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("SSH_AUTH_SOCK", None)
    done = subprocess.run([unshare, "-rn", "sh", "-c", SCRIPT, "audit", *client_options], env=env,
                          capture_output=True, timeout=60, check=False, cwd=REPO_ROOT)
    assert done.returncode != 90, done.stderr
    rc_file = tmp_path / "audit.rc"
    assert rc_file.exists(), (done.stdout, done.stderr)
    report: dict[str, Any] = json.loads((tmp_path / "audit.json").read_text())
    return int(rc_file.read_text()), report


def notes(report: dict[str, Any], level: str) -> list[str]:
    return [f"{section} {entry['algorithm']}: {note}"
            for section in ("kex", "key", "enc", "mac")
            for entry in report[section]
            for note in entry.get("notes", {}).get(level, [])]


def offered(report: dict[str, Any], section: str) -> list[str]:
    return [entry["algorithm"] for entry in report[section]]


def test_default_offer_has_no_failures(tmp_path: Path) -> None:
    code, report = audit(tmp_path)
    assert notes(report, "fail") == []
    assert code in (0, 2), code  # 2: warnings only (curve25519/DH are not post-quantum)
    kex = offered(report, "kex")
    assert kex[0] == "mlkem768x25519-sha256"
    assert {"ext-info-c", "kex-strict-c-v00@openssh.com"} <= set(kex)
    everything = " ".join(kex + offered(report, "key") + offered(report, "enc") + offered(report, "mac"))
    for banned in ("cbc", "sha1", "nistp", "umac-64", "ssh-rsa ", "group1-", "none"):
        assert banned not in everything + " ", banned
    assert report["cves"] == []


def test_strict_profile_is_clean(tmp_path: Path) -> None:
    code, report = audit(tmp_path, *STRICT_OPTIONS)
    assert notes(report, "fail") == [] and notes(report, "warn") == []
    assert code == 0
    assert offered(report, "kex") == ["mlkem768x25519-sha256", "ext-info-c", "kex-strict-c-v00@openssh.com"]
    assert all(mac.endswith("-etm@openssh.com") for mac in offered(report, "mac"))
