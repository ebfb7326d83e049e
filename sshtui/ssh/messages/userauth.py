"""User authentication messages (RFC 4252 §5, §7, §8; RFC 4256 §3 keyboard-interactive).

Message number 60 means different things depending on the method in progress, so each
meaning has its own class and ``decode_method_reply`` picks one from the pending method.
Everything a server says to the user (banners, prompts, names) must go through
``escape_untrusted_text`` before it reaches a terminal.

Layouts are declared in field metadata (see ``messages.base``) except where a field's
presence depends on an earlier one (USERAUTH_REQUEST's method-specific tail; the publickey
and password bodies, whose flag says whether a last field follows) and for
USERAUTH_INFO_REQUEST, whose wire order is not its field order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple, Self

from sshtui.ssh.constants import MsgType
from sshtui.ssh.errors import DecodeError, LocalProtocolError
from sshtui.ssh.messages.base import (
    ASCII,
    BOOL,
    BYTES,
    NAMES,
    TEXT,
    Fields,
    Message,
    counted,
    open_reader,
    record,
)
from sshtui.ssh.wire import WireReader, boolean, byte, string

_Buffer = bytes | bytearray | memoryview

# A server could otherwise make us build and show an unbounded number of prompts.
MAX_PROMPTS = 64


class _DeclaredBody(Fields):
    """A method body whose fields are all declared in metadata; it ends the message."""

    __slots__ = ()

    def encode_body(self) -> bytes:
        return self._encode_fields()

    @classmethod
    def decode_body(cls, r: WireReader) -> Self:
        return cls._decode_fields(r)


@dataclass(frozen=True, slots=True)
class NoneAuth(_DeclaredBody):
    """The "none" method: asks which methods may continue (RFC 4252 §5.2)."""

    METHOD: ClassVar[str] = "none"


@dataclass(frozen=True, slots=True)
class PublickeyAuth:
    """RFC 4252 §7. Without a signature this is a query answered by USERAUTH_PK_OK."""

    METHOD: ClassVar[str] = "publickey"
    algorithm: str
    public_key: bytes
    signature: bytes | None = None

    @property
    def has_signature(self) -> bool:
        return self.signature is not None

    def encode_body(self) -> bytes:
        head = boolean(self.has_signature) + string(self.algorithm) + string(self.public_key)
        return head if self.signature is None else head + string(self.signature)

    @classmethod
    def decode_body(cls, r: WireReader) -> Self:
        has_signature = r.boolean("has-signature flag")
        algorithm = r.ascii("public key algorithm")
        public_key = r.string("public key blob")
        signature = r.string("signature") if has_signature else None
        return cls(algorithm, public_key, signature)


@dataclass(frozen=True, slots=True)
class PasswordAuth:
    """RFC 4252 §8. With ``new_password`` set this answers a PASSWD_CHANGEREQ."""

    METHOD: ClassVar[str] = "password"
    password: str = field(repr=False)
    new_password: str | None = field(default=None, repr=False)

    def encode_body(self) -> bytes:
        if self.new_password is None:
            return boolean(False) + string(self.password)
        return boolean(True) + string(self.password) + string(self.new_password)

    @classmethod
    def decode_body(cls, r: WireReader) -> Self:
        changing = r.boolean("password change flag")
        password = r.text("password")
        new_password = r.text("new password") if changing else None
        return cls(password, new_password)


@dataclass(frozen=True, slots=True)
class KeyboardInteractiveAuth(_DeclaredBody):
    """RFC 4256 §3.1. The language tag is deprecated and normally empty."""

    METHOD: ClassVar[str] = "keyboard-interactive"
    language: str = field(default="", metadata=ASCII)
    submethods: str = field(default="", metadata=TEXT)


@dataclass(frozen=True, slots=True)
class UnknownAuth:
    """The method-specific fields of a method we do not implement, kept verbatim."""

    data: bytes = b""

    def encode_body(self) -> bytes:
        return self.data


KnownAuthBody = NoneAuth | PublickeyAuth | PasswordAuth | KeyboardInteractiveAuth
AuthMethodBody = KnownAuthBody | UnknownAuth
_KNOWN_METHODS: dict[str, type[KnownAuthBody]] = {
    body.METHOD: body for body in (NoneAuth, PublickeyAuth, PasswordAuth, KeyboardInteractiveAuth)
}


@dataclass(frozen=True, slots=True)
class UserauthRequest:
    """RFC 4252 §5. ``method`` must agree with ``body`` so the bytes decode back the same.

    Written out by hand: the fields after the method name depend on the method.
    """

    MSG: ClassVar[int] = MsgType.USERAUTH_REQUEST
    user: str
    service: str
    method: str
    body: AuthMethodBody

    def __post_init__(self) -> None:
        known = _KNOWN_METHODS.get(self.method)
        matches = isinstance(self.body, UnknownAuth) if known is None else isinstance(self.body, known)
        if not matches:
            raise LocalProtocolError(
                f"USERAUTH_REQUEST: method {self.method!r:.64} does not match {type(self.body).__name__}"
            )

    @classmethod
    def of(cls, user: str, service: str, body: KnownAuthBody) -> UserauthRequest:
        return cls(user, service, body.METHOD, body)

    def encode(self) -> bytes:
        return (
            byte(self.MSG) + string(self.user) + string(self.service) + string(self.method)
            + self.body.encode_body()
        )

    @classmethod
    def decode(cls, payload: _Buffer) -> UserauthRequest:
        r = open_reader(payload, cls.MSG)
        user = r.text("user name")
        service = r.ascii("service name")
        method = r.ascii("method name")
        known = _KNOWN_METHODS.get(method)
        body: AuthMethodBody = UnknownAuth(r.rest()) if known is None else known.decode_body(r)
        r.check_end()
        return cls(user, service, method, body)


def publickey_signed_data(
    session_id: bytes, user: str, service: str, algorithm: str, public_key: bytes
) -> bytes:
    """The bytes a publickey signature covers (RFC 4252 §7)."""
    return b"".join((
        string(session_id),
        byte(MsgType.USERAUTH_REQUEST),
        string(user),
        string(service),
        string(PublickeyAuth.METHOD),
        boolean(True),
        string(algorithm),
        string(public_key),
    ))


@dataclass(frozen=True, slots=True)
class UserauthFailure(Message):
    """RFC 4252 §5.1: the methods that may continue, and whether the last one succeeded."""

    MSG: ClassVar[int] = MsgType.USERAUTH_FAILURE
    methods: tuple[str, ...] = field(metadata=NAMES)
    partial_success: bool = field(default=False, metadata=BOOL)


@dataclass(frozen=True, slots=True)
class UserauthSuccess(Message):
    MSG: ClassVar[int] = MsgType.USERAUTH_SUCCESS


@dataclass(frozen=True, slots=True)
class UserauthBanner(Message):
    """RFC 4252 §5.4. Untrusted: show it only through ``escape_untrusted_text``."""

    MSG: ClassVar[int] = MsgType.USERAUTH_BANNER
    message: str = field(metadata=TEXT)
    language: str = field(default="", metadata=ASCII)


@dataclass(frozen=True, slots=True)
class UserauthPkOk(Message):
    """RFC 4252 §7: the server would accept a signature from this key."""

    MSG: ClassVar[int] = MsgType.USERAUTH_PK_OK
    algorithm: str = field(metadata=ASCII)
    public_key: bytes = field(metadata=BYTES)


@dataclass(frozen=True, slots=True)
class UserauthPasswdChangereq(Message):
    """RFC 4252 §8: the password has expired; ``prompt`` is untrusted text."""

    MSG: ClassVar[int] = MsgType.USERAUTH_PK_OK  # 60, in the password method's meaning
    prompt: str = field(metadata=TEXT)
    language: str = field(default="", metadata=ASCII)


class Prompt(NamedTuple):
    text: str
    echo: bool


_PROMPTS = counted(MAX_PROMPTS, record(("prompt", TEXT), ("echo flag", BOOL), make=Prompt))["wire"]


@dataclass(frozen=True, slots=True)
class UserauthInfoRequest:
    """RFC 4256 §3.2. All text fields are untrusted; at most ``MAX_PROMPTS`` prompts.

    Written out by hand because the wire order is not the field order: the language tag
    precedes the prompts on the wire, but comes last here so that it can default.
    """

    MSG: ClassVar[int] = MsgType.USERAUTH_PK_OK  # 60, in keyboard-interactive's meaning
    name: str
    instruction: str
    prompts: tuple[Prompt, ...]
    language: str = ""

    def encode(self) -> bytes:
        head = byte(self.MSG) + string(self.name) + string(self.instruction) + string(self.language)
        return head + _PROMPTS.encode(self.prompts, "prompts")

    @classmethod
    def decode(cls, payload: _Buffer) -> UserauthInfoRequest:
        r = open_reader(payload, cls.MSG)
        name = r.text("name")
        instruction = r.text("instruction")
        language = r.ascii("language tag")
        prompts = _PROMPTS.decode(r, "prompts")
        r.check_end()
        return cls(name, instruction, prompts, language)


@dataclass(frozen=True, slots=True)
class UserauthInfoResponse(Message):
    """RFC 4256 §3.4: one answer per prompt, in order. Answers are secrets."""

    MSG: ClassVar[int] = MsgType.USERAUTH_INFO_RESPONSE
    responses: tuple[str, ...] = field(repr=False, metadata=counted(MAX_PROMPTS, TEXT))

MethodReply = UserauthPkOk | UserauthPasswdChangereq | UserauthInfoRequest
_METHOD_REPLIES: dict[str, type[MethodReply]] = {
    PublickeyAuth.METHOD: UserauthPkOk,
    PasswordAuth.METHOD: UserauthPasswdChangereq,
    KeyboardInteractiveAuth.METHOD: UserauthInfoRequest,
}


def decode_method_reply(payload: _Buffer, method: str) -> MethodReply:
    """Decode message 60 in the meaning that ``method``, the one in progress, gives it."""
    reply = _METHOD_REPLIES.get(method)
    if reply is None:
        raise DecodeError(f"message 60 while authenticating with {method!r:.64}, which defines none")
    return reply.decode(payload)


# C0 (except tab and newline), DEL, C1, and the Unicode controls that reorder or
# separate lines: each can rewrite what the user sees (RFC 4251 §9.2 asks clients to
# filter control characters from server text).
_UNSAFE = re.compile(
    r"([\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069])"
)
TRUNCATION_MARKER = "[...truncated]"


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_untrusted_text(text: str, limit: int = 4096) -> str:
    """``text`` made safe to print: control characters become visible escapes such as
    ``\\x1b``, newlines and tabs stay. Output longer than ``limit`` characters is cut,
    never inside an escape, and ends with ``TRUNCATION_MARKER``."""
    if limit < 0:
        raise LocalProtocolError(f"escape limit must not be negative, got {limit}")
    # Escaping never shortens text, so nothing past ``limit`` input characters can be kept.
    pieces = _UNSAFE.split(text[: limit + 1])
    out: list[str] = []
    room = limit
    for index, piece in enumerate(pieces):
        shown = _visible(piece) if index % 2 else piece
        if len(shown) > room:
            if not index % 2:
                out.append(shown[:room])
            return "".join(out) + TRUNCATION_MARKER
        out.append(shown)
        room -= len(shown)
    return "".join(out)
