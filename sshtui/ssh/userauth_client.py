"""The client side of user authentication: RFC 4252 §5-§8 (none, publickey, password),
RFC 4256 §3 (keyboard-interactive), RFC 8332 §3 with RFC 8308 server-sig-algs (rsa-sha2 choice).

Sans-IO. ``handle(payload)`` takes one message numbered 50..79 that the transport handed up
and returns events; the methods named after protocol steps send through ``send``. Every move,
inbound or outbound, is looked up in an explicit transition table, so a message or a call out
of place raises instead of being half-handled. Passwords, responses and signatures never reach
an event repr, an attempt record or an error message.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum, auto

from sshtui.ssh.constants import MsgType, message_name
from sshtui.ssh.crypto.hostkeys import (
    HOST_KEY_ALGORITHMS,
    fingerprint_sha256,
    parse_signature_blob,
    public_key_type,
)
from sshtui.ssh.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from sshtui.ssh.messages.userauth import (
    KeyboardInteractiveAuth,
    KnownAuthBody,
    NoneAuth,
    PasswordAuth,
    PublickeyAuth,
    UserauthBanner,
    UserauthFailure,
    UserauthInfoRequest,
    UserauthInfoResponse,
    UserauthPasswdChangereq,
    UserauthPkOk,
    UserauthRequest,
    UserauthSuccess,
    escape_untrusted_text,
    publickey_signed_data,
)
from sshtui.ssh.userauth_common import CONNECTION_SERVICE, USERAUTH_RANGE, Send
from sshtui.ssh.userauth_events import (
    AttemptResult,
    AuthAttempt,
    AuthBanner,
    AuthEvent,
    AuthFailed,
    AuthSucceeded,
    InfoRequested,
    PasswordChangeRequested,
    PublicKeyAccepted,
)

# A server may show a banner, not bury the user in them.
MAX_BANNERS = 20
MAX_BANNER_BYTES = 64 * 1024


_MSG_60_KINDS: tuple[tuple[str, type[UserauthPkOk | UserauthPasswdChangereq | UserauthInfoRequest]], ...] = (
    ("USERAUTH_INFO_REQUEST", UserauthInfoRequest),
    ("USERAUTH_PK_OK", UserauthPkOk),
    ("USERAUTH_PASSWD_CHANGEREQ", UserauthPasswdChangereq),
)


def _guess_msg_60(payload: bytes) -> str:
    """Which meaning of message 60 a payload decodes as, to name it in errors."""
    for name, kind in _MSG_60_KINDS:
        try:
            kind.decode(payload)
        except DecodeError:
            continue
        return f"{name} (message 60)"
    return "message 60"


def _key_label(algorithm: str, blob: bytes) -> str:
    return f"{algorithm!r:.64} key {fingerprint_sha256(blob)}"


class ClientAuthState(Enum):
    READY = auto()  # nothing in flight: any request may be sent
    NONE_SENT = auto()
    PUBLICKEY_QUERY_SENT = auto()
    PUBLICKEY_ACCEPTED = auto()  # PK_OK received: sign now, or try something else
    PUBLICKEY_SIGNED_SENT = auto()
    PASSWORD_SENT = auto()
    PASSWORD_CHANGE_REQUESTED = auto()
    KEYBOARD_INTERACTIVE_SENT = auto()
    KEYBOARD_INTERACTIVE_PROMPTED = auto()  # the user owes answers
    AUTHENTICATED = auto()


class _ClientStep(Enum):
    SEND_NONE = auto()
    SEND_PASSWORD = auto()
    SEND_PASSWORD_CHANGE = auto()
    SEND_PUBLICKEY_QUERY = auto()
    SEND_PUBLICKEY_SIGNATURE = auto()
    SEND_KEYBOARD_INTERACTIVE = auto()
    SEND_INFO_RESPONSE = auto()
    GOT_SUCCESS = auto()
    GOT_FAILURE = auto()
    GOT_PK_OK = auto()
    GOT_PASSWD_CHANGEREQ = auto()
    GOT_INFO_REQUEST = auto()


_C = ClientAuthState
_CS = _ClientStep
# RFC 4252 §5: a new request abandons whatever method-specific exchange was going on.
_CLIENT_IDLE = (
    _C.READY, _C.PUBLICKEY_ACCEPTED, _C.PASSWORD_CHANGE_REQUESTED, _C.KEYBOARD_INTERACTIVE_PROMPTED
)
_CLIENT_REQUESTS = {
    _CS.SEND_NONE: _C.NONE_SENT,
    _CS.SEND_PASSWORD: _C.PASSWORD_SENT,
    _CS.SEND_PUBLICKEY_QUERY: _C.PUBLICKEY_QUERY_SENT,
    _CS.SEND_PUBLICKEY_SIGNATURE: _C.PUBLICKEY_SIGNED_SENT,
    _CS.SEND_KEYBOARD_INTERACTIVE: _C.KEYBOARD_INTERACTIVE_SENT,
}
CLIENT_TRANSITIONS: dict[tuple[ClientAuthState, _ClientStep], ClientAuthState] = {
    **{(idle, step): target for idle in _CLIENT_IDLE for step, target in _CLIENT_REQUESTS.items()},
    (_C.PASSWORD_CHANGE_REQUESTED, _CS.SEND_PASSWORD_CHANGE): _C.PASSWORD_SENT,
    (_C.KEYBOARD_INTERACTIVE_PROMPTED, _CS.SEND_INFO_RESPONSE): _C.KEYBOARD_INTERACTIVE_SENT,
    (_C.NONE_SENT, _CS.GOT_SUCCESS): _C.AUTHENTICATED,
    (_C.NONE_SENT, _CS.GOT_FAILURE): _C.READY,
    (_C.PUBLICKEY_QUERY_SENT, _CS.GOT_PK_OK): _C.PUBLICKEY_ACCEPTED,
    (_C.PUBLICKEY_QUERY_SENT, _CS.GOT_FAILURE): _C.READY,
    (_C.PUBLICKEY_SIGNED_SENT, _CS.GOT_SUCCESS): _C.AUTHENTICATED,
    (_C.PUBLICKEY_SIGNED_SENT, _CS.GOT_FAILURE): _C.READY,
    (_C.PASSWORD_SENT, _CS.GOT_SUCCESS): _C.AUTHENTICATED,
    (_C.PASSWORD_SENT, _CS.GOT_FAILURE): _C.READY,
    (_C.PASSWORD_SENT, _CS.GOT_PASSWD_CHANGEREQ): _C.PASSWORD_CHANGE_REQUESTED,
    (_C.KEYBOARD_INTERACTIVE_SENT, _CS.GOT_SUCCESS): _C.AUTHENTICATED,
    (_C.KEYBOARD_INTERACTIVE_SENT, _CS.GOT_FAILURE): _C.READY,
    (_C.KEYBOARD_INTERACTIVE_SENT, _CS.GOT_INFO_REQUEST): _C.KEYBOARD_INTERACTIVE_PROMPTED,
}
_METHOD_IN_FLIGHT = {
    _C.NONE_SENT: "none",
    _C.PUBLICKEY_QUERY_SENT: "publickey",
    _C.PUBLICKEY_SIGNED_SENT: "publickey",
    _C.PASSWORD_SENT: "password",
    _C.KEYBOARD_INTERACTIVE_SENT: "keyboard-interactive",
}
# Message 60 has one meaning per method (RFC 4252 §7, §8; RFC 4256 §3.2).
_MSG_60_MEANING = {
    _C.PUBLICKEY_QUERY_SENT: (_CS.GOT_PK_OK, "USERAUTH_PK_OK"),
    _C.PASSWORD_SENT: (_CS.GOT_PASSWD_CHANGEREQ, "USERAUTH_PASSWD_CHANGEREQ"),
    _C.KEYBOARD_INTERACTIVE_SENT: (_CS.GOT_INFO_REQUEST, "USERAUTH_INFO_REQUEST"),
}


class ClientAuth:
    """The client side of ssh-userauth. One request is in flight at a time.

    A driver usually starts with ``try_none()`` to learn the methods, then for each key calls
    ``query_publickey`` and, on ``PublicKeyAccepted``, signs ``publickey_signed_data`` (locally or
    through an agent) and calls ``send_publickey_signature``; then passwords or
    keyboard-interactive, as ``AuthFailed.allowed`` permits. A new request may abandon an
    unanswered PK_OK, password change or keyboard-interactive round (RFC 4252 §5).
    """

    def __init__(
        self,
        username: str,
        session_id: bytes,
        send: Send,
        *,
        service: str = CONNECTION_SERVICE,
        server_sig_algs: tuple[str, ...] = (),
        allow_ssh_rsa: bool = False,
    ) -> None:
        self.username = username
        self.service = service
        self.server_sig_algs = server_sig_algs  # the driver updates it when EXT_INFO arrives late
        self.allow_ssh_rsa = allow_ssh_rsa
        self.state = ClientAuthState.READY
        self.allowed_methods: tuple[str, ...] = ()
        self.attempts: tuple[AuthAttempt, ...] = ()
        self._session_id = session_id
        self._send = send
        self._key: tuple[str, bytes] | None = None  # the publickey request in flight
        self._prompt_count = 0
        self._banners = 0
        self._banner_bytes = 0

    @property
    def authenticated(self) -> bool:
        return self.state is ClientAuthState.AUTHENTICATED

    # -- inbound

    def handle(self, payload: bytes) -> list[AuthEvent]:
        if not payload:
            raise DecodeError("empty payload where a userauth message was expected")
        msg_type = payload[0]
        if msg_type not in USERAUTH_RANGE:
            raise LocalProtocolError(f"ClientAuth.handle got {message_name(msg_type)}, not userauth")
        if self.state is ClientAuthState.AUTHENTICATED:
            if msg_type == MsgType.USERAUTH_BANNER:
                return []  # too late to show; harmless (OpenSSH ignores it as well)
            raise RemoteProtocolError(f"{message_name(msg_type)} after authentication succeeded")
        if msg_type == MsgType.USERAUTH_BANNER:
            return [self._on_banner(payload)]
        if msg_type == MsgType.USERAUTH_SUCCESS:
            UserauthSuccess.decode(payload)
            return [self._on_success()]
        if msg_type == MsgType.USERAUTH_FAILURE:
            return [self._on_failure(UserauthFailure.decode(payload))]
        if msg_type == MsgType.USERAUTH_PK_OK:
            return [self._on_msg_60(payload)]
        raise RemoteProtocolError(f"unexpected {message_name(msg_type)} from the server")

    def _on_banner(self, payload: bytes) -> AuthBanner:
        self._banners += 1
        self._banner_bytes += len(payload)
        if self._banners > MAX_BANNERS or self._banner_bytes > MAX_BANNER_BYTES:
            raise RemoteProtocolError(
                f"banner flood: more than {MAX_BANNERS} USERAUTH_BANNER messages or {MAX_BANNER_BYTES} bytes"
            )
        return AuthBanner(escape_untrusted_text(UserauthBanner.decode(payload).message, MAX_BANNER_BYTES))

    def _on_success(self) -> AuthSucceeded:
        method = _METHOD_IN_FLIGHT.get(self.state, "")
        self._move(_CS.GOT_SUCCESS, "USERAUTH_SUCCESS")
        self._record(method, "success", self.allowed_methods, False)
        return AuthSucceeded(method)

    def _on_failure(self, msg: UserauthFailure) -> AuthFailed:
        method = _METHOD_IN_FLIGHT.get(self.state, "")
        self._move(_CS.GOT_FAILURE, "USERAUTH_FAILURE")
        self.allowed_methods = msg.methods
        result: AttemptResult = "partial" if msg.partial_success else "failure"
        self._record(method, result, msg.methods, msg.partial_success)
        return AuthFailed(msg.methods, msg.partial_success, method)

    def _on_msg_60(self, payload: bytes) -> AuthEvent:
        meaning = _MSG_60_MEANING.get(self.state)
        if meaning is None:
            raise RemoteProtocolError(f"unexpected {_guess_msg_60(payload)} {self._describe()}")
        step, expected = meaning
        try:
            if step is _CS.GOT_PK_OK:
                return self._on_pk_ok(UserauthPkOk.decode(payload))
            if step is _CS.GOT_PASSWD_CHANGEREQ:
                prompt = UserauthPasswdChangereq.decode(payload).prompt
                self._move(step, expected)
                return PasswordChangeRequested(escape_untrusted_text(prompt))
            return self._on_info_request(UserauthInfoRequest.decode(payload))
        except DecodeError as exc:
            method = _METHOD_IN_FLIGHT[self.state]
            raise RemoteProtocolError(
                f"unexpected {_guess_msg_60(payload)} during {method} authentication,"
                f" where message 60 is {expected}: {exc.message}"
            ) from None

    def _on_pk_ok(self, msg: UserauthPkOk) -> PublicKeyAccepted:
        if self._key != (msg.algorithm, msg.public_key):
            raise RemoteProtocolError(
                f"USERAUTH_PK_OK for a key we did not ask about: {_key_label(msg.algorithm, msg.public_key)}"
            )
        self._move(_CS.GOT_PK_OK, "USERAUTH_PK_OK")
        self._record("publickey", "pk_ok", self.allowed_methods, False)
        return PublicKeyAccepted(msg.algorithm, msg.public_key)

    def _on_info_request(self, msg: UserauthInfoRequest) -> InfoRequested:
        self._move(_CS.GOT_INFO_REQUEST, "USERAUTH_INFO_REQUEST")
        self._prompt_count = len(msg.prompts)
        prompts = tuple((escape_untrusted_text(p.text), p.echo) for p in msg.prompts)
        return InfoRequested(escape_untrusted_text(msg.name), escape_untrusted_text(msg.instruction), prompts)

    # -- outbound

    def try_none(self) -> None:
        self._request(_CS.SEND_NONE, NoneAuth())

    def try_password(self, password: str) -> None:
        self._request(_CS.SEND_PASSWORD, PasswordAuth(password))

    def change_password(self, old: str, new: str) -> None:
        self._request(_CS.SEND_PASSWORD_CHANGE, PasswordAuth(old, new))

    def query_publickey(self, algorithm: str, public_blob: bytes) -> None:
        """Ask whether the server would accept this key (RFC 4252 §7, "has signature" FALSE)."""
        self._check_key(algorithm, public_blob)
        self._request(_CS.SEND_PUBLICKEY_QUERY, PublickeyAuth(algorithm, public_blob))
        self._key = (algorithm, public_blob)

    def publickey_signed_data(self, algorithm: str, public_blob: bytes) -> bytes:
        """What the user key must sign for ``send_publickey_signature`` (RFC 4252 §7)."""
        self._check_key(algorithm, public_blob)
        return publickey_signed_data(self._session_id, self.username, self.service, algorithm, public_blob)

    def send_publickey_signature(self, algorithm: str, public_blob: bytes, signature_blob: bytes) -> None:
        self._check_key(algorithm, public_blob)
        try:
            signed_with, _ = parse_signature_blob(signature_blob)
        except DecodeError as exc:
            raise LocalProtocolError(f"not a signature blob: {exc.message}") from None
        if signed_with != algorithm:
            # Old agents answer rsa-sha2 requests with ssh-rsa signatures; the server would refuse.
            raise LocalProtocolError(f"the signature is {signed_with!r:.64}, not the requested {algorithm}")
        self._request(_CS.SEND_PUBLICKEY_SIGNATURE, PublickeyAuth(algorithm, public_blob, signature_blob))
        self._key = (algorithm, public_blob)

    def try_keyboard_interactive(self, submethods: str = "") -> None:
        self._request(_CS.SEND_KEYBOARD_INTERACTIVE, KeyboardInteractiveAuth("", submethods))

    def send_info_response(self, responses: Sequence[str]) -> None:
        prompted = self.state is ClientAuthState.KEYBOARD_INTERACTIVE_PROMPTED
        if prompted and len(responses) != self._prompt_count:
            raise LocalProtocolError(f"{len(responses)} responses to {self._prompt_count} prompts")
        self._move(_CS.SEND_INFO_RESPONSE, "send an info response")
        self._send(UserauthInfoResponse(tuple(responses)).encode())

    def rsa_algorithm_for(self) -> str:
        """The RSA signature algorithm to use (RFC 8332 §3.3, RFC 8308 §3.1). Without
        server-sig-algs rsa-sha2-512 is assumed: every OpenSSH since 7.2 accepts it."""
        for name in ("rsa-sha2-512", "rsa-sha2-256"):
            if name in self.server_sig_algs:
                return name
        if self.allow_ssh_rsa and "ssh-rsa" in self.server_sig_algs:
            return "ssh-rsa"
        return "rsa-sha2-512"

    def signature_algorithm_for(self, public_blob: bytes) -> str:
        """The algorithm to use with a key: its own type, or the RSA choice for RSA keys."""
        key_type = public_key_type(public_blob)
        return self.rsa_algorithm_for() if key_type == "ssh-rsa" else key_type

    # -- internals

    def _request(self, step: _ClientStep, body: KnownAuthBody) -> None:
        self._move(step, f"send a {body.METHOD} request")
        self._key = None
        self._send(UserauthRequest.of(self.username, self.service, body).encode())

    def _check_key(self, algorithm: str, public_blob: bytes) -> None:
        if algorithm == "ssh-rsa" and not self.allow_ssh_rsa:
            raise LocalProtocolError("ssh-rsa (SHA-1) signatures are disabled; use rsa-sha2-512 or -256")
        try:
            key_type = public_key_type(public_blob)
        except DecodeError as exc:
            raise LocalProtocolError(f"not a public key blob: {exc.message}") from None
        spec = HOST_KEY_ALGORITHMS.get(algorithm)
        if spec is not None and spec.key_type != key_type:
            raise LocalProtocolError(f"a {key_type!r:.64} key cannot make {algorithm} signatures")

    def _move(self, step: _ClientStep, what: str) -> None:
        target = CLIENT_TRANSITIONS.get((self.state, step))
        if target is None:
            if step.name.startswith("GOT_"):
                raise RemoteProtocolError(f"unexpected {what} {self._describe()}")
            raise LocalProtocolError(f"cannot {what} {self._describe()}")
        self.state = target

    def _describe(self) -> str:
        method = _METHOD_IN_FLIGHT.get(self.state)
        if method is not None:
            return f"while a {method} request is in flight"
        return f"in state {self.state.name}"

    def _record(self, method: str, result: AttemptResult, allowed: tuple[str, ...], partial: bool) -> None:
        key_type = fingerprint = None
        if method == "publickey" and self._key is not None:
            key_type, fingerprint = public_key_type(self._key[1]), fingerprint_sha256(self._key[1])
        attempt = AuthAttempt(method, key_type, fingerprint, result, allowed, partial)
        self.attempts = (*self.attempts, attempt)

