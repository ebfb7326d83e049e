"""Hypothesis strategies for the fuzz targets: structure-aware mutations of each target's valid seeds
(bit and byte flips, truncation, insertion, duplication, splicing, as OpenSSH's sshkey test_fuzz.c
does) mixed with plain random bytes.

``examples(name)`` is how many inputs a CI run tries per target; ``SSHTUI_FUZZ_SCALE=20`` (for
example) multiplies them for a longer run by hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from hypothesis import strategies as st

from tests.fuzz.targets import TARGETS

# Per-target CI budget, sized so the whole fuzz directory runs in well under a minute on 2 cores.
CI_EXAMPLES: dict[str, int] = {
    "version": 300,
    "packet": 300,
    "message": 600,
    "kexinit": 200,
    "transport": 80,
    "userauth": 300,
    "channels": 300,
    "private_key": 150,
    "public_key": 200,
    "known_hosts": 200,
    "ssh_config": 150,
    "hosts_toml": 150,
    "socks": 300,
    "forward_spec": 300,
    "terminal": 200,
}
MAX_RANDOM = 4096


def examples(name: str) -> int:
    scale = float(os.environ.get("SSHTUI_FUZZ_SCALE", "1") or 1)
    return max(1, int(CI_EXAMPLES[name] * scale))


def _flip_bit(data: bytearray, draw: st.DrawFn) -> None:
    if data:
        at = draw(st.integers(0, len(data) - 1))
        data[at] ^= 1 << draw(st.integers(0, 7))


def _set_byte(data: bytearray, draw: st.DrawFn) -> None:
    if data:
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))


def _truncate(data: bytearray, draw: st.DrawFn) -> None:
    if data:
        del data[draw(st.integers(0, len(data) - 1)) :]


def _cut_head(data: bytearray, draw: st.DrawFn) -> None:
    if len(data) > 1:
        del data[1 : draw(st.integers(1, len(data) - 1)) + 1]  # keep the option byte


def _insert(data: bytearray, draw: st.DrawFn) -> None:
    at = draw(st.integers(0, len(data)))
    data[at:at] = draw(st.binary(min_size=1, max_size=16))


def _delete(data: bytearray, draw: st.DrawFn) -> None:
    if data:
        start = draw(st.integers(0, len(data) - 1))
        del data[start : start + draw(st.integers(1, 16))]


def _duplicate(data: bytearray, draw: st.DrawFn) -> None:
    if data:
        start = draw(st.integers(0, len(data) - 1))
        piece = data[start : start + draw(st.integers(1, 64))]
        at = draw(st.integers(0, len(data)))
        data[at:at] = piece


def _giant_length(data: bytearray, draw: st.DrawFn) -> None:
    # Length prefixes are where parsers over-read or over-allocate: plant a big or off-by-one one.
    if len(data) >= 4:
        at = draw(st.integers(0, len(data) - 4))
        value = draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, len(data) - at - 3]))
        data[at : at + 4] = (value & 0xFFFFFFFF).to_bytes(4, "big")


MUTATIONS: tuple[Callable[[bytearray, st.DrawFn], None], ...] = (
    _flip_bit, _set_byte, _truncate, _cut_head, _insert, _delete, _duplicate, _giant_length,
)


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        draw(st.sampled_from(MUTATIONS))(data, draw)
    return bytes(data)


def fuzz_input(name: str) -> st.SearchStrategy[bytes]:
    """Inputs for one target: mostly mutated seeds, some untouched seeds, some random bytes."""
    seeds = tuple(TARGETS[name].seeds())
    return st.one_of(
        mutated(seeds),
        mutated(seeds),
        mutated(seeds),
        st.sampled_from(seeds),
        st.binary(max_size=MAX_RANDOM),
    )
