"""Every parser fed mutated and random input: only its documented, typed errors may come out.

One hypothesis test per target in ``targets.TARGETS``; a target raising anything else (IndexError,
struct.error, UnicodeDecodeError, a bare ValueError, a crash of the emulator) fails the test with the
shrunk input. Seeds alone must also pass, and so must every truncation of every seed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.strategies import examples, fuzz_input
from tests.fuzz.targets import TARGETS


def _fuzz_test(name: str) -> Callable[[], None]:
    run = TARGETS[name].run

    @settings(
        max_examples=examples(name),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(fuzz_input(name))
    def test(data: bytes) -> None:
        run(data)

    test.__name__ = f"test_fuzz_{name}"
    test.__doc__ = f"{name}: {TARGETS[name].run.__doc__}"
    return test


for _name in TARGETS:
    globals()[f"test_fuzz_{_name}"] = _fuzz_test(_name)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_truncated_seed_is_handled(name: str) -> None:
    """Input cut at every offset (a peer or a file that stops early) never escapes as a crash."""
    target = TARGETS[name]
    seeds = target.seeds()
    assert seeds, f"{name} has no seed inputs"
    step = 7 if name == "transport" else 1  # the transcript is 2 KiB of real key exchange
    for seed in seeds:
        for cut in range(0, len(seed) + 1, step):
            target.run(seed[:cut])
