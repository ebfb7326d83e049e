"""Coverage-guided fuzzing of one target with atheris (libFuzzer for Python), run by hand:

    pip install atheris
    python tests/fuzz/atheris_main.py TARGET [-runs=N] [-max_total_time=S] [CORPUS_DIR ...]
    python tests/fuzz/atheris_main.py --list

TARGET is a name from ``tests/fuzz/targets.py`` (``packet``, ``transport``, ``known_hosts``...). The
target's seeds are added to the first corpus directory given (or a temporary one). A crash is any
exception other than the parser's typed errors; libFuzzer writes the input to ``crash-*``.
"""

from __future__ import annotations

import atexit
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv: list[str]) -> int:
    try:
        import atheris  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 2
    with atheris.instrument_imports():
        import sshtui  # noqa: F401  (instrumented for coverage feedback)
        from tests.fuzz.targets import RUNS, TARGETS

    if len(argv) < 2 or argv[1] in ("-h", "--help", "--list"):
        print("targets: " + " ".join(TARGETS))
        return 0 if len(argv) > 1 else 2
    name = argv[1]
    if name not in TARGETS:
        print(f"unknown target {name!r}; choose from: {' '.join(TARGETS)}", file=sys.stderr)
        return 2
    target = TARGETS[name]
    options = [arg for arg in argv[2:] if arg.startswith("-")]
    corpora = [arg for arg in argv[2:] if not arg.startswith("-")]
    if not corpora:
        corpora = [tempfile.mkdtemp(prefix=f"sshtui-fuzz-{name}-")]
    seed_dir = Path(corpora[0])
    seed_dir.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(target.seeds()):
        (seed_dir / f"seed-{index}").write_bytes(seed)

    def one_input(data: bytes) -> None:
        target.run(data)

    # libFuzzer leaves through exit(): report from an exit hook.
    atexit.register(lambda: print(f"{name}: {RUNS[name]} inputs run", file=sys.stderr))
    atheris.Setup([argv[0], *options, *corpora], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
