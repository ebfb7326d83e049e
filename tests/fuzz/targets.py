"""Fuzz targets: one function per parser that takes raw bytes and either returns or raises one of the
errors the parser documents. Anything else escaping (IndexError, struct.error, UnicodeDecodeError, a
bare ValueError...) is a bug. Shared by the hypothesis tests (``test_*.py`` here) and the atheris
harness (``atheris_main.py``); ``RUNS`` counts inputs per target for docs/reliability.md.

Each target may read a few leading bytes as options (which cipher, which message class, how to chunk
the input) so that one flat byte string covers the whole target, as libFuzzer needs.
"""

from __future__ import annotations

import contextlib
import inspect
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sshtui.ssh.channels.manager import ConnectionLayer
from sshtui.ssh.config import TransportConfig, server_config
from sshtui.ssh.crypto import certificates, hostkeys, userkeys
from sshtui.ssh.crypto.ciphers import CIPHERS
from sshtui.ssh.crypto.hostkeys import PrivateKey
from sshtui.ssh.crypto.macs import MACS
from sshtui.ssh.errors import SSHError
from sshtui.ssh.events import HostKeyReceived
from sshtui.ssh.messages import connection as mc
from sshtui.ssh.messages import kex as mk
from sshtui.ssh.messages import transport as mt
from sshtui.ssh.messages import userauth as mu
from sshtui.ssh.negotiate import negotiate
from sshtui.ssh.packet import DirectionKeys, PacketReader, PacketWriter
from sshtui.ssh.transport import Transport
from sshtui.ssh.transport_keys import AEAD_CIPHERS
from sshtui.ssh.transport_machine import Role
from sshtui.ssh.userauth_client import ClientAuth
from sshtui.ssh.version import VersionParser

RUNS: Counter[str] = Counter()
SESSION_ID = bytes(range(32))


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]


def _chunks(data: bytes, size_byte: int) -> Iterator[bytes]:
    """Split ``data`` the way a socket might: 1 to 64 bytes at a time (0: all at once)."""
    step = (size_byte % 65) or len(data) or 1
    for i in range(0, len(data), step):
        yield data[i : i + step]


def _pick(options: Sequence[object], data: bytes, at: int = 0) -> int:
    return data[at] % len(options) if len(data) > at else 0


# ---------------------------------------------------------------------------------------------- version


def run_version(data: bytes) -> None:
    """RFC 4253 §4.2 identification line, with pre-banner lines on the client side."""
    RUNS["version"] += 1
    parser = VersionParser(expect_preamble=bool(data[:1]) and data[0] & 1 == 1)
    try:
        for chunk in _chunks(data[2:], data[1] if len(data) > 1 else 0):
            if parser.feed(chunk) is not None:
                break
    except SSHError:
        pass


def seeds_version() -> list[bytes]:
    return [b"\x01\x00SSH-2.0-OpenSSH_9.6\r\n", b"\x01\x03hello\r\nSSH-1.99-x\r\n", b"\x00\x00SSH-2.0-x y\n"]


# ---------------------------------------------------------------------------------------------- packets

# Every cipher, and every MAC for the non-AEAD ones: (cipher, mac) pairs in a fixed order.
FRAMINGS: tuple[tuple[str | None, str | None], ...] = (
    (None, None),  # before the first NEWKEYS: no cipher
    *((name, None) for name in CIPHERS if name in AEAD_CIPHERS),
    *((name, mac) for name in CIPHERS if name not in AEAD_CIPHERS for mac in MACS),
)


def framing_keys(index: int) -> DirectionKeys | None:
    cipher, mac = FRAMINGS[index % len(FRAMINGS)]
    if cipher is None:
        return None
    spec = CIPHERS[cipher]
    mac_key = b"\x33" * MACS[mac].key_size if mac else b""
    return DirectionKeys(cipher, mac, b"\x11" * spec.key_size, b"\x22" * spec.iv_size, mac_key)


def run_packet(data: bytes) -> None:
    """RFC 4253 §6 framing under each cipher: data[0] picks the cipher/MAC, data[1] the chunking."""
    RUNS["packet"] += 1
    if len(data) < 2:
        return
    reader = PacketReader()
    keys = framing_keys(data[0])
    reader.set_keys(keys)
    try:
        for chunk in _chunks(data[2:], data[1]):
            reader.feed(chunk)
            while (payload := reader.next_payload()) is not None:
                if payload[:1] == b"\x15":  # NEWKEYS: the reader waits for keys; give it the same ones
                    reader.set_keys(keys)
    except SSHError:
        pass


def seeds_packet() -> list[bytes]:
    seeds = []
    for index in range(len(FRAMINGS)):
        writer = PacketWriter(lambda n: b"\x00" * n)
        writer.set_keys(framing_keys(index))
        wire = b"".join(writer.encode(p) for p in (b"\x02\x00\x00\x00\x03abc", b"\x5e" + b"\x00" * 40))
        seeds.append(bytes((index, 0)) + wire)
    return seeds


# ---------------------------------------------------------------------------------------------- messages


def _decoders() -> list[tuple[int, Callable[[bytes], object]]]:
    found: list[tuple[int, Callable[[bytes], object]]] = []
    for module in (mt, mk, mu, mc):
        for _, cls in sorted(vars(module).items()):
            if inspect.isclass(cls) and cls.__module__ == module.__name__ and hasattr(cls, "MSG"):
                decode = getattr(cls, "decode", None)
                if decode is not None:
                    found.append((int(cls.MSG), decode))
    for registry in (mc.GLOBAL_REQUEST_BODIES, mc.CHANNEL_OPEN_BODIES, mc.CHANNEL_REQUEST_BODIES):
        for _, body in sorted(registry.items()):
            found.append((-1, body.decode_data))
    found.append((-1, mc.decode_terminal_modes))
    return found


DECODERS = _decoders()


def run_message(data: bytes) -> None:
    """Every message decoder (RFC 4253/4252/4254/8308 and the OpenSSH extensions); data[0] picks one."""
    RUNS["message"] += 1
    if not data:
        return
    msg, decode = DECODERS[data[0] % len(DECODERS)]
    body = data[1:]
    # Mostly give the right message number, so decoding gets past the first byte.
    payload = bytes((msg,)) + body if msg >= 0 and not (data[0] & 0x80) else body
    with contextlib.suppress(SSHError):
        decode(payload)


def seeds_message() -> list[bytes]:
    samples: list[bytes] = [
        mt.Disconnect(2, "bye").encode(), mt.Debug(True, "hi").encode(),
        mt.ExtInfo((("server-sig-algs", b"ssh-ed25519,rsa-sha2-256"),)).encode(),
        mu.UserauthFailure(("publickey", "password"), False).encode(),
        mu.UserauthBanner("Welcome\n").encode(),
        mu.UserauthInfoRequest("n", "i", (mu.Prompt("Password: ", False),)).encode(),
        mc.ChannelOpenConfirmation(0, 1, 2 << 20, 32768).encode(),
        mc.ChannelRequest(0, "exit-status", False, mc.ExitStatus(3).encode_data()).encode(),
        mc.encode_channel_data(0, b"hello"),
    ]
    index = {msg: i for i, (msg, _) in reversed(list(enumerate(DECODERS)))}
    return [bytes((index.get(s[0], 0),)) + s[1:] for s in samples]


# ---------------------------------------------------------------------------------------------- KEXINIT


@cache
def _our_kexinit() -> mt.KexInit:
    client = Transport(Role.CLIENT, TransportConfig(), rng=lambda n: b"\x01" * n)
    client.start(0.0)
    return mt.KexInit.decode(client._local_kexinit_payload)


def run_kexinit(data: bytes) -> None:
    """A peer KEXINIT: decode it, then negotiate against our default offer (RFC 4253 §7.1)."""
    RUNS["kexinit"] += 1
    try:
        peer = mt.KexInit.decode(b"\x14" + data)
        negotiate(_our_kexinit(), peer, AEAD_CIPHERS)
    except SSHError:
        pass


def seeds_kexinit() -> list[bytes]:
    server = Transport(Role.SERVER, server_config(), rng=lambda n: b"\x02" * n, host_keys=[_host_key()])
    server.start(0.0)
    return [server._local_kexinit_payload[1:]]


# ---------------------------------------------------------------------------------------------- transport


@cache
def _host_key() -> PrivateKey:
    return PrivateKey.generate("ed25519")


def _seeded(seed: int) -> Callable[[int], bytes]:
    import random

    generator = random.Random(seed)
    return generator.randbytes


@cache
def server_transcript() -> bytes:
    """What a real (in-memory) server sends a client with a fixed rng through NEWKEYS and EXT_INFO."""
    client = Transport(Role.CLIENT, TransportConfig(), rng=_seeded(1))
    server = Transport(Role.SERVER, server_config(), rng=_seeded(2), host_keys=[_host_key()])
    client.start(0.0)
    server.start(0.0)
    sent = bytearray()
    for _ in range(20):
        to_server, to_client = client.data_to_send(), server.data_to_send()
        if not to_server and not to_client:
            break
        sent += to_client
        if to_server:
            server.receive_data(to_server, 1.0)
        if to_client:
            for event in client.receive_data(to_client, 1.0):
                if isinstance(event, HostKeyReceived):
                    client.accept_host_key(1.0)
    return bytes(sent)


def run_transport(data: bytes) -> None:
    """A client whose rng replays the transcript's, fed mutated server bytes (OpenSSH kex_fuzz style)."""
    RUNS["transport"] += 1
    client = Transport(Role.CLIENT, TransportConfig(), rng=_seeded(1))
    client.start(0.0)
    size = data[0] if data else 0
    for chunk in _chunks(data[1:], size):
        events = client.receive_data(chunk, 1.0)
        for event in events:
            if isinstance(event, HostKeyReceived):
                events += client.accept_host_key(1.0)
        if client.error is not None:
            assert isinstance(client.error, SSHError), repr(client.error)
            assert str(client.error)
            return
    client.data_to_send()


def seeds_transport() -> list[bytes]:
    return [b"\x00" + server_transcript(), b"\x07" + server_transcript()]


# ---------------------------------------------------------------------------------------------- userauth


def run_userauth(data: bytes) -> None:
    """Server replies to a client's auth requests (RFC 4252/4256), as length-prefixed payloads."""
    RUNS["userauth"] += 1
    sent: list[bytes] = []
    auth = ClientAuth("alice", SESSION_ID, sent.append, server_sig_algs=("ssh-ed25519",))
    starters: list[Callable[[], None]] = [
        auth.try_none,
        lambda: auth.try_password("hunter2"),
        auth.try_keyboard_interactive,
        lambda: auth.query_publickey("ssh-ed25519", _host_key().public_blob),
    ]
    try:
        starters[_pick(starters, data)]()
        for payload in _length_prefixed(data[1:]):
            auth.handle(payload)
            if auth.authenticated:
                return
    except SSHError:
        pass


def _length_prefixed(data: bytes) -> Iterator[bytes]:
    """A byte string cut into payloads: one length byte, then that many bytes."""
    i = 0
    while i < len(data):
        size = data[i] or 1
        yield data[i + 1 : i + 1 + size]
        i += 1 + size


def _prefixed(*payloads: bytes) -> bytes:
    return b"".join(bytes((len(p),)) + p for p in payloads if len(p) < 256)


def seeds_userauth() -> list[bytes]:
    return [
        b"\x00" + _prefixed(mu.UserauthBanner("hi").encode(),
                            mu.UserauthFailure(("password",), False).encode()),
        b"\x02" + _prefixed(mu.UserauthInfoRequest("", "", (mu.Prompt("Code: ", True),)).encode(),
                            mu.UserauthSuccess().encode()),
        b"\x03" + _prefixed(mu.UserauthPkOk("ssh-ed25519", _host_key().public_blob).encode()),
    ]


# ---------------------------------------------------------------------------------------------- channels


def run_channels(data: bytes) -> None:
    """The client connection layer (RFC 4254) with one session open, fed server payloads."""
    RUNS["channels"] += 1
    sent: list[bytes] = []
    layer = ConnectionLayer(sent.append, is_client=True, initial_window=4096, max_packet=1024)
    try:
        layer.open_session(1.0)
        layer.open_direct_tcpip("127.0.0.1", 80, "127.0.0.1", 1, 1.0)
        for payload in _length_prefixed(data):
            layer.handle(payload, 2.0)
    except SSHError:
        pass


def seeds_channels() -> list[bytes]:
    return [_prefixed(
        mc.ChannelOpenConfirmation(0, 7, 1 << 20, 32768).encode(),
        mc.ChannelWindowAdjust(0, 100).encode(),
        mc.encode_channel_data(0, b"out"),
        mc.encode_channel_extended_data(0, 1, b"err"),
        mc.ChannelRequest(0, "exit-status", False, mc.ExitStatus(0).encode_data()).encode(),
        mc.ChannelEof(0).encode(),
        mc.ChannelClose(0).encode(),
        mc.GlobalRequest("keepalive@openssh.com", True, b"").encode(),
    )]


# ---------------------------------------------------------------------------------------------- keys


def run_private_key(data: bytes) -> None:
    """A private key file (OpenSSH, PEM, PKCS#8), with or without a passphrase."""
    RUNS["private_key"] += 1
    passphrase = b"secret" if data[:1] == b"P" else None
    try:
        userkeys.is_encrypted(data, source="fuzz")
        userkeys.load_private_key(data, passphrase, source="fuzz")
    except SSHError:
        pass


def run_public_key(data: bytes) -> None:
    """Public key lines and blobs, signature blobs and certificates (host keys come this way)."""
    RUNS["public_key"] += 1
    for step in (
        lambda: userkeys.load_public_key_file(data, source="fuzz"),
        lambda: hostkeys.parse_openssh_public_line(data),
        lambda: hostkeys.public_key_from_blob(data),
        lambda: hostkeys.parse_signature_blob(data),
        lambda: hostkeys.verify_signature("ssh-ed25519", _host_key().public_blob, data, b"signed data"),
        lambda: certificates.parse_certificate(data),
    ):
        with contextlib.suppress(SSHError):
            step()


@cache
def _key_files() -> list[bytes]:
    key = _host_key()
    return [key.to_openssh(), key.to_openssh(b"secret"), PrivateKey.generate("ecdsa").to_openssh()]


def seeds_private_key() -> list[bytes]:
    return _key_files()


def seeds_public_key() -> list[bytes]:
    blob = _host_key().public_blob
    line = hostkeys.openssh_public_line(blob, "me@host").encode()
    return [blob, line, _host_key().sign("ssh-ed25519", b"x")]


# ---------------------------------------------------------------------------------------------- store files


def run_known_hosts(data: bytes) -> None:
    """A known_hosts file: bad lines become warnings, never exceptions; lookups never raise."""
    from sshtui.store.known_hosts import KnownHosts

    RUNS["known_hosts"] += 1
    known = KnownHosts.parse(data, Path("known_hosts"))
    for host, port in (("example.com", 22), ("192.0.2.1", 2222), ("[::1]", 22)):
        known.check(host, port, _host_key().public_blob)
        known.entries_for(host, port)


def seeds_known_hosts() -> list[bytes]:
    line = hostkeys.openssh_public_line(_host_key().public_blob).encode()
    return [
        b"example.com,192.0.2.1 " + line + b"\n",
        b"[example.com]:2222 " + line + b" comment\r\n@revoked * " + line + b"\n",
        b"|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= " + line,
        b"@cert-authority *.example.com " + line + b"\n!bad.example.com,*.example.com " + line,
    ]


@cache
def _home() -> Path:
    return Path(tempfile.mkdtemp(prefix="sshtui-fuzz-home-"))


def run_ssh_config(data: bytes) -> None:
    """ssh_config(5) text, then resolving a few hosts through it. Include lines are dropped so that a
    fuzzed glob cannot wander over the machine's files."""
    from sshtui.store.ssh_config import SshConfig
    from sshtui.store.ssh_config_resolve import LocalContext

    RUNS["ssh_config"] += 1
    text = data.decode("utf-8", "surrogateescape")
    lines = [line for line in text.splitlines() if not line.strip().lower().startswith("include")]
    home = _home()
    try:
        config = SshConfig.from_text("\n".join(lines), home / "config", home=home)
        local = LocalContext.current(home)
        for host in ("example.com", "web1", "192.0.2.7"):
            resolved = config.resolve(host, local)
            _ = (resolved.proxy_jump, resolved.connect_timeout, resolved.local_forwards)
    except SSHError:
        pass


def seeds_ssh_config() -> list[bytes]:
    return [
        b"Host web*\n  HostName %h.example.com\n  Port 2222\n  User=deploy\n  ProxyJump bastion\n"
        b"Match host example.com user *\n  ConnectTimeout 10\n  LocalForward 8080 localhost:80\n",
        b'Host "quoted name" *\n IdentityFile ~/.ssh/id_%r\n ServerAliveInterval 15s\n',
    ]


def run_hosts_toml(data: bytes) -> None:
    """hosts.toml as saved by the session manager (sshtui/store/hosts.py)."""
    from sshtui.store.hosts import HostStore

    RUNS["hosts_toml"] += 1
    path = _home() / "hosts.toml"
    path.write_bytes(data)
    try:
        store = HostStore.load(path)
        for host in store:
            host.ssh_options()
            _ = host.destination
    except SSHError:
        pass


def seeds_hosts_toml() -> list[bytes]:
    return [
        b'version = 1\n[hosts.web]\nhostname = "web.example.com"\nport = 2222\nuser = "deploy"\n'
        b'tags = ["prod"]\njump = ["bastion"]\nforwards = ["-L 8080:localhost:80"]\n',
        b'[hosts."a b"]\nhostname = "x"\nnotes = """multi\nline"""\n',
    ]


# ---------------------------------------------------------------------------------------------- forwarding


def run_socks(data: bytes) -> None:
    """A SOCKS4/4a/5 client's handshake bytes, delivered in chunks (RFC 1928)."""
    from sshtui.net.socks import SocksError, SocksHandshake

    RUNS["socks"] += 1
    handshake = SocksHandshake()
    try:
        for chunk in _chunks(data[1:], data[0] if data else 0):
            handshake.feed(chunk)
            if handshake.request is not None:
                return
    except SocksError:
        pass


def seeds_socks() -> list[bytes]:
    return [
        b"\x00\x05\x01\x00\x05\x01\x00\x03\x0bexample.com\x00\x50",
        b"\x03\x05\x02\x00\x02\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90extra",
        b"\x00\x04\x01\x00\x50\x00\x00\x00\x01user\x00example.com\x00",
        b"\x00\x05\x01\x00\x05\x01\x00\x04" + bytes(15) + b"\x01\x00\x16",
    ]


def run_forward_spec(data: bytes) -> None:
    """-L/-R/-D arguments and -J jump host lists as typed on the command line or saved."""
    from sshtui.forward_spec import ForwardSpecError, parse_forward, parse_jump_hosts

    RUNS["forward_spec"] += 1
    kinds = ("local", "remote", "dynamic")
    text = data[1:].decode("utf-8", "replace")
    with contextlib.suppress(ForwardSpecError):
        parse_forward(kinds[_pick(kinds, data)], text)  # type: ignore[arg-type]
    with contextlib.suppress(ForwardSpecError):
        parse_jump_hosts(text)


def seeds_forward_spec() -> list[bytes]:
    return [b"\x008080:localhost:80", b"\x01[::1]:2222:[2001:db8::1]:22", b"\x02*:1080", b"\x00/tmp/s:host:1"]


# ---------------------------------------------------------------------------------------------- terminal


def run_terminal(data: bytes) -> None:
    """Server output into both terminal emulators: never raises, whatever the escape sequences."""
    from sshtui.ui.terminal.avt_backend import AvtBackend
    from sshtui.ui.terminal.backend import PyteBackend

    RUNS["terminal"] += 1
    for backend_class in (AvtBackend, PyteBackend):
        replies: list[bytes] = []
        backend = backend_class(20, 6, scrollback=50, on_reply=replies.append)
        for chunk in _chunks(data[1:], data[0] if data else 0):
            backend.feed(chunk)
        backend.resize(7, 3)
        backend.display()
        backend.take_dirty()
        for y in range(backend.rows):
            backend.row_segments(y)
        for index in range(backend.history_size):
            backend.history_segments(index)


def seeds_terminal() -> list[bytes]:
    return [
        b"\x03\x1b[2J\x1b[H\x1b[1;31mred\x1b[0m\r\n\x1b]0;title\x07\x1b[?1049h\x1b[5;5r\x1b[6n",
        b"\x00caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\x1b[?2004h\x1bP1$r\x1b\\\x9b31m",
    ]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("version", run_version, seeds_version),
        Target("packet", run_packet, seeds_packet),
        Target("message", run_message, seeds_message),
        Target("kexinit", run_kexinit, seeds_kexinit),
        Target("transport", run_transport, seeds_transport),
        Target("userauth", run_userauth, seeds_userauth),
        Target("channels", run_channels, seeds_channels),
        Target("private_key", run_private_key, seeds_private_key),
        Target("public_key", run_public_key, seeds_public_key),
        Target("known_hosts", run_known_hosts, seeds_known_hosts),
        Target("ssh_config", run_ssh_config, seeds_ssh_config),
        Target("hosts_toml", run_hosts_toml, seeds_hosts_toml),
        Target("socks", run_socks, seeds_socks),
        Target("forward_spec", run_forward_spec, seeds_forward_spec),
        Target("terminal", run_terminal, seeds_terminal),
    )
}
