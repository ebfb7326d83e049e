"""Channel flow-control windows (RFC 4254 §5.2): a peer can never overrun what we
granted, credit comes back only for data the application has read, and a window can
never grow past 2**32 - 1."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sshtui.ssh.channels import ReceiveWindow, SendWindow
from sshtui.ssh.errors import LocalProtocolError, RemoteProtocolError

WINDOW_MAX = 2**32 - 1

window_sizes = st.one_of(st.integers(0, 4096), st.integers(0, WINDOW_MAX), st.just(WINDOW_MAX))
packet_sizes = st.one_of(st.integers(1, 4096), st.integers(1, WINDOW_MAX))


class ReceiveWindowMachine(RuleBasedStateMachine):
    """A peer sending legal and illegal amounts, and an application reading at random."""

    @initialize(initial=window_sizes, max_packet=packet_sizes)
    def open_channel(self, initial: int, max_packet: int) -> None:
        self.window = ReceiveWindow(initial, max_packet)
        self.initial = initial
        self.received = 0
        self.consumed = 0
        self.credited = 0

    @rule(fraction=st.floats(0, 1))
    def peer_sends_within_limits(self, fraction: float) -> None:
        size = int(min(self.window.available, self.window.max_packet) * fraction)
        self.window.on_data(size)
        self.received += size

    @rule(excess=st.integers(1, 2**33))
    def peer_overruns_the_window(self, excess: int) -> None:
        before = repr(self.window)
        with pytest.raises(RemoteProtocolError, match=r"window allowed only|maximum packet size"):
            self.window.on_data(self.window.available + excess)
        assert repr(self.window) == before

    @precondition(lambda self: self.window.max_packet < WINDOW_MAX)
    @rule()
    def peer_sends_oversized_packet(self) -> None:
        with pytest.raises(RemoteProtocolError, match="maximum packet size"):
            self.window.on_data(self.window.max_packet + 1)

    @rule(fraction=st.floats(0, 1))
    def application_reads(self, fraction: float) -> None:
        size = int(self.window.buffered * fraction)
        unacknowledged_before = self.window.unacknowledged
        increment = self.window.consumed(size)
        self.consumed += size
        self.credited += increment
        if increment:
            # The adjust returns exactly what was read and not yet returned, and only
            # once that reaches half the initial window.
            assert increment == unacknowledged_before + size
            assert increment >= self.initial // 2

    @rule(extra=st.integers(1, 100))
    def application_reads_more_than_buffered(self, extra: int) -> None:
        with pytest.raises(LocalProtocolError):
            self.window.consumed(self.window.buffered + extra)

    @precondition(lambda self: self.window.available <= 64 * self.window.max_packet)
    @rule()
    def peer_fills_window_and_application_drains_it(self) -> None:
        for _ in range(65):  # bounded: a broken window must fail the test, not hang it
            if not self.window.available:
                break
            size = min(self.window.available, self.window.max_packet)
            self.window.on_data(size)
            self.received += size
        self.consumed += self.window.buffered
        self.credited += self.window.consumed(self.window.buffered)
        assert self.credited == self.consumed
        assert self.window.available == self.initial

    @invariant()
    def counters_stay_in_range(self) -> None:
        for value in (self.window.available, self.window.buffered, self.window.unacknowledged):
            assert 0 <= value <= WINDOW_MAX

    @invariant()
    def every_byte_is_accounted_for(self) -> None:
        w = self.window
        assert w.available + w.buffered + w.unacknowledged == self.initial
        assert w.buffered == self.received - self.consumed

    @invariant()
    def credit_only_follows_consumption(self) -> None:
        assert self.credited <= self.consumed
        assert self.credited + self.window.unacknowledged == self.consumed

    @invariant()
    def an_idle_reader_never_stalls_the_peer(self) -> None:
        # Once everything received is read, at least half the window is open again.
        if self.window.buffered == 0:
            assert self.window.available > self.initial - max(1, self.initial // 2)


class SendWindowMachine(RuleBasedStateMachine):
    @initialize(initial=window_sizes, max_packet=packet_sizes)
    def open_channel(self, initial: int, max_packet: int) -> None:
        self.window = SendWindow(initial, max_packet)
        self.max_packet = max_packet
        self.granted_total = 0
        self.adjusted_total = initial

    @rule(increment=st.one_of(st.integers(0, 65536), st.integers(0, WINDOW_MAX)))
    def peer_adjusts(self, increment: int) -> None:
        before = self.window.available
        if before + increment > WINDOW_MAX:
            with pytest.raises(RemoteProtocolError, match=r"2\*\*32-1"):
                self.window.adjust(increment)
            assert self.window.available == before
        else:
            self.window.adjust(increment)
            self.adjusted_total += increment
            assert self.window.available == before + increment

    @rule(wanted=st.one_of(st.integers(0, 65536), st.integers(0, 2**40)))
    def application_sends(self, wanted: int) -> None:
        before = self.window.available
        granted = self.window.reserve(wanted)
        assert granted == min(wanted, before, self.max_packet)
        self.granted_total += granted

    @invariant()
    def window_stays_in_range(self) -> None:
        assert 0 <= self.window.available <= WINDOW_MAX

    @invariant()
    def never_sends_more_than_granted(self) -> None:
        assert self.granted_total + self.window.available == self.adjusted_total


TestReceiveWindowMachine = ReceiveWindowMachine.TestCase
TestSendWindowMachine = SendWindowMachine.TestCase
TestReceiveWindowMachine.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
TestSendWindowMachine.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)


def test_data_beyond_the_window_is_a_peer_error() -> None:
    window = ReceiveWindow(1000, 32768)
    window.on_data(600)
    with pytest.raises(RemoteProtocolError, match="allowed only 400"):
        window.on_data(401)
    window.on_data(400)
    with pytest.raises(RemoteProtocolError):
        window.on_data(1)


def test_data_beyond_the_maximum_packet_is_a_peer_error() -> None:
    window = ReceiveWindow(1 << 20, 32768)
    window.on_data(32768)
    with pytest.raises(RemoteProtocolError, match="maximum packet size 32768"):
        window.on_data(32769)


def test_adjust_is_sent_once_half_the_window_is_read() -> None:
    window = ReceiveWindow(100, 100)
    window.on_data(100)
    assert window.consumed(49) == 0
    assert window.available == 0
    assert window.consumed(1) == 50
    assert window.available == 50
    assert window.consumed(50) == 50
    assert window.available == 100


def test_a_one_byte_window_refills_after_each_byte() -> None:
    window = ReceiveWindow(1, 1)
    for _ in range(3):
        window.on_data(1)
        assert window.consumed(1) == 1


def test_window_adjust_past_the_protocol_maximum_is_a_peer_error() -> None:
    window = SendWindow(WINDOW_MAX - 10, 32768)
    window.adjust(10)
    assert window.available == WINDOW_MAX
    with pytest.raises(RemoteProtocolError):
        window.adjust(1)
    assert window.available == WINDOW_MAX


def test_reserve_is_limited_by_window_and_packet_size() -> None:
    window = SendWindow(70_000, 32768)
    assert window.reserve(50_000) == 32768
    assert window.reserve(50_000) == 32768
    assert window.reserve(50_000) == 70_000 - 2 * 32768
    assert window.reserve(1) == 0
    window.adjust(5)
    assert window.reserve(10) == 5


@pytest.mark.parametrize(("initial", "max_packet"), [(-1, 10), (WINDOW_MAX + 1, 10), (10, 0), (10, -5)])
def test_bad_local_window_parameters_are_rejected(initial: int, max_packet: int) -> None:
    with pytest.raises(LocalProtocolError):
        ReceiveWindow(initial, max_packet)


def test_peer_announcing_zero_packet_size_is_rejected_rather_than_stalling() -> None:
    with pytest.raises(RemoteProtocolError, match="maximum packet size of 0"):
        SendWindow(1000, 0)


@settings(max_examples=150, deadline=None)
@given(
    total=st.integers(0, 200_000),
    initial=st.integers(1, 70_000),
    max_packet=st.integers(512, 40_000),
    reads=st.lists(st.integers(256, 50_000), min_size=1, max_size=20),
)
def test_bulk_transfer_between_two_ends_completes_without_overrun(
    total: int, initial: int, max_packet: int, reads: list[int]
) -> None:
    """A sender and a slow reader wired together: every byte arrives, the receiver
    never sees an overrun, and the transfer never deadlocks."""
    sender = SendWindow(initial, max_packet)
    receiver = ReceiveWindow(initial, max_packet)
    sent = delivered = 0
    step = 0
    while delivered < total:
        chunk = sender.reserve(total - sent)
        receiver.on_data(chunk)  # raises if the sender ever overran the window
        sent += chunk
        read = min(reads[step % len(reads)], receiver.buffered)
        step += 1
        delivered += read
        increment = receiver.consumed(read)
        if increment:
            sender.adjust(increment)
        assert chunk or read or increment, "transfer stalled"
    assert sent == delivered == total
