#!/usr/bin/env bash
# The project's one test command (CI runs it too): venv + install, system tools, lint, types, tests.
# Usage: bash scripts/test.sh [pytest arguments...]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

# --- 1. Python environment -------------------------------------------------------------------
PYTHON_FOR_VENV="${PYTHON:-python3}"
VENV_PY=".venv/bin/python"

if ! "$VENV_PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    step "creating .venv with $PYTHON_FOR_VENV"
    if ! "$PYTHON_FOR_VENV" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        echo "error: sshtui needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
        exit 1
    fi
    rm -rf .venv
    "$PYTHON_FOR_VENV" -m venv .venv
fi

# Reinstalling costs seconds even when nothing changed, so it is skipped while pyproject.toml is unchanged.
stamp=".venv/.sshtui-install-stamp"
wanted="$(cksum < pyproject.toml)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" || ! -x .venv/bin/sshtui ]]; then
    step "installing sshtui and its test dependencies into .venv"
    "$VENV_PY" -m pip install -q --disable-pip-version-check -e '.[test]'
    printf '%s' "$wanted" > "$stamp"
fi

# --- 2. Real SSH peers for the interop tests ---------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }
missing=()
for tool in sshd ssh ssh-keygen dropbear tmux vim; do
    have "$tool" || missing+=("$tool")
done
if ((${#missing[@]})); then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        step "installing ${missing[*]} (OpenSSH, dropbear and tmux for the interop tests)"
        if ! { apt-get update -qq &&
               DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                   openssh-server openssh-client dropbear-bin tmux vim >/dev/null; }; then
            echo "note: installing ${missing[*]} failed; the interop tests that need them will be skipped"
        fi
    else
        echo "note: ${missing[*]} not installed and cannot install them here (needs root and apt-get);" \
             "the interop tests that need them will be skipped"
    fi
fi

# --- 3. Lint, types, tests ---------------------------------------------------------------------
failed=()

step "ruff check"
lint_paths=()
for path in sshtui tests bench; do
    if [[ -e "$path" ]]; then lint_paths+=("$path"); fi
done
"$VENV_PY" -m ruff check "${lint_paths[@]}" || failed+=("ruff")

step "mypy (strict) sshtui"
"$VENV_PY" -m mypy sshtui || failed+=("mypy")

step "pytest $*"
pytest_status=0
"$VENV_PY" -m pytest "$@" || pytest_status=$?
((pytest_status == 0)) || failed+=("pytest (exit $pytest_status)")

if ((${#failed[@]})); then
    printf '\nFAILED: %s\n' "${failed[*]}" >&2
    if ((pytest_status != 0)); then
        exit "$pytest_status"
    fi
    exit 1
fi
