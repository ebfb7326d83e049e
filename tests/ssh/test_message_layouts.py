"""Transport, key exchange and user authentication messages (RFC 4253 §7-§11, RFC 8308,
RFC 5656 §4, RFC 4419 §3, RFC 4252, RFC 4256): transport byte layouts agree with paramiko,
and every message class round-trips values generated from its declared wire types, refuses
every truncation and trailing byte, and names the message and field when it refuses."""

from __future__ import annotations

import inspect
import struct
from dataclasses import fields, is_dataclass
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sshtui.ssh.constants import message_name
from sshtui.ssh.errors import DecodeError, LocalProtocolError
from sshtui.ssh.messages import kex, transport, userauth
from sshtui.ssh.messages.base import Codec
from sshtui.ssh.messages.transport import (
    Debug,
    Disconnect,
    ExtInfo,
    Ignore,
    KexInit,
    NewKeys,
    ServiceAccept,
    ServiceRequest,
    Unimplemented,
)
from tests.ssh.paramiko_wire import paramiko_bytes

# --- Known answers -----------------------------------------------------------------------


def test_transport_messages_match_paramiko() -> None:
    assert Disconnect(11, "bye", "en").encode() == paramiko_bytes(1, 11, "bye", "en")
    assert Ignore(b"\x00chaff").encode() == paramiko_bytes(2, b"\x00chaff")
    assert Unimplemented(7).encode() == paramiko_bytes(3, 7)
    assert Debug(True, "hello").encode() == paramiko_bytes(4, True, "hello", "")
    assert ServiceRequest("ssh-userauth").encode() == paramiko_bytes(5, "ssh-userauth")
    assert ServiceAccept("ssh-connection").encode() == paramiko_bytes(6, "ssh-connection")
    ext = ExtInfo((("server-sig-algs", b"ssh-ed25519,rsa-sha2-256"), ("ping@openssh.com", b"0")))
    wire = paramiko_bytes(7, 2, "server-sig-algs", b"ssh-ed25519,rsa-sha2-256", "ping@openssh.com", b"0")
    assert ext.encode() == wire
    assert ExtInfo.decode(wire).get("ping@openssh.com") == b"0"
    assert NewKeys().encode() == bytes([21])


def test_kexinit_matches_paramiko_and_rfc4253_section_7_1() -> None:
    cookie = bytes(range(16))
    msg = KexInit(
        cookie, ("curve25519-sha256", "ext-info-c"), ("ssh-ed25519",), ("aes128-ctr",), ("aes256-ctr",),
        ("hmac-sha2-256",), ("hmac-sha2-512",), first_kex_packet_follows=True,
    )
    lists = [
        ["curve25519-sha256", "ext-info-c"], ["ssh-ed25519"], ["aes128-ctr"], ["aes256-ctr"],
        ["hmac-sha2-256"], ["hmac-sha2-512"], ["none"], ["none"], [], [],
    ]
    wire = paramiko_bytes(20, *lists, True, 0)
    wire = wire[:1] + cookie + wire[1:]
    assert msg.encode() == wire
    assert KexInit.decode(wire) == msg


# --- Values generated from the declared wire types ---------------------------------------

name_chars = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=",")
algorithm_names = st.text(name_chars, min_size=1, max_size=64)


def values_of(codec: Codec) -> st.SearchStrategy[Any]:
    """Every value a field of this wire type may hold."""
    leaves: dict[str, st.SearchStrategy[Any]] = {
        "uint32": st.integers(0, 2**32 - 1),
        "boolean": st.booleans(),
        "text": st.text(max_size=40),
        "ascii": st.text(st.characters(max_codepoint=0x7F), max_size=20),
        "string": st.binary(max_size=64),
        "rest": st.binary(max_size=64),
        "mpint": st.integers(-(2**2100), 2**2100),
        "name-list": st.lists(algorithm_names, max_size=6).map(tuple),
    }
    if codec.kind in leaves:
        return leaves[codec.kind]
    if codec.kind == "fixed":
        (size,) = codec.args
        return st.binary(min_size=size, max_size=size)
    if codec.kind == "counted":
        limit, item = codec.args
        return st.lists(values_of(item), max_size=min(limit, 4)).map(tuple)
    if codec.kind == "record":
        make, *parts = codec.args
        items = st.tuples(*(values_of(part) for _, part in parts))
        return items if make is None else items.map(lambda values: make(*values))
    raise AssertionError(f"no strategy for wire type {codec.kind!r}: add one to values_of")


def from_declared_layout(cls: type) -> st.SearchStrategy[Any]:
    return st.builds(cls, *(values_of(f.metadata["wire"]) for f in fields(cls)))


def is_declared(cls: type) -> bool:
    return is_dataclass(cls) and all("wire" in f.metadata for f in fields(cls))


def message_classes(module: ModuleType) -> list[type]:
    return [
        cls for _, cls in sorted(vars(module).items())
        if inspect.isclass(cls) and cls.__module__ == module.__name__ and hasattr(cls, "MSG")
    ]


MESSAGE_CLASSES = [cls for module in (transport, kex, userauth) for cls in message_classes(module)]

texts = st.text(max_size=40)
ascii_text = st.text(st.characters(max_codepoint=0x7F), max_size=20)
blobs = st.binary(max_size=64)
known_auth_bodies = st.one_of(
    from_declared_layout(userauth.NoneAuth),
    st.builds(userauth.PublickeyAuth, algorithm_names, blobs, st.none() | blobs),
    st.builds(userauth.PasswordAuth, texts, st.none() | texts),
    from_declared_layout(userauth.KeyboardInteractiveAuth),
)
# The messages written out by hand, because their layout is not a fixed sequence of fields.
HAND_WRITTEN: dict[type, st.SearchStrategy[Any]] = {
    userauth.UserauthRequest: st.builds(userauth.UserauthRequest.of, texts, ascii_text, known_auth_bodies),
    userauth.UserauthInfoRequest: st.builds(
        userauth.UserauthInfoRequest, texts, texts,
        st.lists(st.builds(userauth.Prompt, texts, st.booleans()), max_size=4).map(tuple), ascii_text,
    ),
}
messages = st.one_of(
    *(HAND_WRITTEN[cls] if cls in HAND_WRITTEN else from_declared_layout(cls) for cls in MESSAGE_CLASSES)
)


def test_every_message_class_is_generated() -> None:
    assert len(MESSAGE_CLASSES) >= 25
    undeclared = [cls for cls in MESSAGE_CLASSES if not is_declared(cls) and cls not in HAND_WRITTEN]
    assert undeclared == []


@settings(max_examples=400)
@given(messages)
def test_every_message_round_trips(msg: Any) -> None:
    wire = msg.encode()
    assert wire[0] == msg.MSG
    assert type(msg).decode(wire) == msg
    assert type(msg).decode(memoryview(wire)) == msg
    assert type(msg).decode(bytearray(wire)).encode() == wire


@given(messages, st.data())
def test_truncation_is_refused_naming_the_message(msg: Any, data: st.DataObject) -> None:
    wire = msg.encode()
    if len(wire) == 1:
        return
    cut = data.draw(st.integers(1, len(wire) - 1))
    with pytest.raises(DecodeError, match=f"^{message_name(msg.MSG)}: truncated "):
        type(msg).decode(wire[:cut])


@given(messages, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(msg: Any, extra: bytes) -> None:
    refusal = f"^{message_name(msg.MSG)}: {len(extra)} unexpected trailing bytes"
    with pytest.raises(DecodeError, match=refusal):
        type(msg).decode(msg.encode() + extra)


# --- Refusals name what was wrong ----------------------------------------------------------


def test_values_outside_a_wire_type_are_refused_on_encode_by_message_and_field() -> None:
    with pytest.raises(LocalProtocolError, match=r"Disconnect\.reason 4294967296 is outside"):
        Disconnect(2**32, "bye").encode()
    with pytest.raises(LocalProtocolError, match=r"KexDhGexRequest\.max_bits -1 is outside"):
        kex.KexDhGexRequest(2048, 3072, -1).encode()
    with pytest.raises(LocalProtocolError, match=r"ServiceRequest\.service .* is not ASCII"):
        ServiceRequest("ssh-usérauth").encode()
    with pytest.raises(LocalProtocolError, match=r"KexInit\.cookie is 15 bytes, not 16"):
        KexInit(bytes(15), (), (), (), (), (), ()).encode()
    with pytest.raises(LocalProtocolError, match=r"KexInit\.mac_s2c .* is not ASCII"):
        KexInit(bytes(16), (), (), (), (), (), ("hmac-ſha1",)).encode()


def test_malformed_fields_are_refused_by_message_and_field() -> None:
    def string(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    with pytest.raises(DecodeError, match=r"^DEBUG: message is not valid UTF-8"):
        Debug.decode(b"\x04\x01" + string(b"\xff") + string(b""))
    with pytest.raises(DecodeError, match=r"^USERAUTH_FAILURE: methods has an invalid name 'a b'"):
        userauth.UserauthFailure.decode(b"\x33" + string(b"a b") + b"\x00")
    too_many = transport.MAX_EXTENSIONS + 1
    huge = bytes(transport.MAX_EXTENSION_VALUE + 1)
    with pytest.raises(DecodeError, match=rf"^EXT_INFO: extension 'huge' value is {len(huge)} bytes"):
        ExtInfo.decode(b"\x07" + struct.pack(">I", 1) + string(b"huge") + string(huge))
    with pytest.raises(DecodeError, match=rf"^EXT_INFO: {too_many} extensions \(limit"):
        ExtInfo.decode(b"\x07" + struct.pack(">I", too_many))
