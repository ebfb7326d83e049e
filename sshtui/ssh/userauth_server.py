"""The server side of user authentication: RFC 4252 §5-§8 (none, publickey, password) and
RFC 4256 §3 (keyboard-interactive), with OpenSSH's limit on failed attempts (MaxAuthTries).

Sans-IO. ``handle(payload)`` takes one message numbered 50..79 that the transport handed up
and returns events the driver must answer; the methods named after decisions send through
``send``. Every move is looked up in an explicit transition table, so a message or a call out
of place raises instead of being half-handled. Passwords and responses never reach an event
repr or an error message.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum, auto

from sshtui.ssh.constants import DisconnectReason, MsgType, message_name
from sshtui.ssh.crypto.hostkeys import (
    DEFAULT_HOST_KEY_ALGORITHMS,
    HOST_KEY_ALGORITHMS,
    public_key_from_blob,
    public_key_type,
    verify_signature,
)
from sshtui.ssh.errors import DecodeError, LocalProtocolError, RemoteProtocolError, SSHError
from sshtui.ssh.messages.userauth import (
    MAX_PROMPTS,
    KeyboardInteractiveAuth,
    NoneAuth,
    PasswordAuth,
    Prompt,
    PublickeyAuth,
    UserauthBanner,
    UserauthFailure,
    UserauthInfoRequest,
    UserauthInfoResponse,
    UserauthPasswdChangereq,
    UserauthPkOk,
    UserauthRequest,
    UserauthSuccess,
    publickey_signed_data,
)
from sshtui.ssh.userauth_common import CONNECTION_SERVICE, USERAUTH_RANGE, Send
from sshtui.ssh.userauth_events import (
    Authenticated,
    KeyboardInteractiveResponse,
    KeyboardInteractiveStart,
    NoneAttempt,
    PasswordAttempt,
    PublicKeyAttempt,
    PublicKeyQuery,
    ServerAuthEvent,
)

SERVER_METHODS = ("none", "publickey", "password", "keyboard-interactive")


def _usable_key(algorithm: str, blob: bytes) -> bool:
    """A key we can verify, with an algorithm that fits it and is not SHA-1 ``ssh-rsa``."""
    spec = HOST_KEY_ALGORITHMS.get(algorithm)
    if spec is None or algorithm not in DEFAULT_HOST_KEY_ALGORITHMS:
        return False
    try:
        if public_key_type(blob) != spec.key_type:
            return False
        public_key_from_blob(blob)
    except SSHError:
        return False
    return True


class TooManyAttempts(LocalProtocolError):
    """``max_attempts`` failures: the connection must be closed (OpenSSH's MaxAuthTries)."""

    def __init__(self, user: str, failures: int) -> None:
        super().__init__(
            f"too many authentication failures ({failures}) for user {user!r:.64}",
            DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE,
        )
        self.user = user
        self.failures = failures


class ServerAuthState(Enum):
    WAITING = auto()  # for the client's next USERAUTH_REQUEST
    NONE_DECISION = auto()
    PUBLICKEY_QUERY_DECISION = auto()
    PUBLICKEY_DECISION = auto()
    PASSWORD_DECISION = auto()
    KEYBOARD_INTERACTIVE_DECISION = auto()
    KEYBOARD_INTERACTIVE_PROMPTED = auto()  # INFO_REQUEST sent; the client owes answers
    AUTHENTICATED = auto()
    FAILED = auto()


class _ServerStep(Enum):
    GOT_NONE = auto()
    GOT_PUBLICKEY_QUERY = auto()
    GOT_PUBLICKEY = auto()
    GOT_PASSWORD = auto()
    GOT_KEYBOARD_INTERACTIVE = auto()
    GOT_INFO_RESPONSE = auto()
    REFUSE = auto()  # a request for a method not on offer, answered without asking the driver
    ACCEPT = auto()
    REJECT = auto()
    ACCEPT_KEY_QUERY = auto()
    SEND_INFO_REQUEST = auto()
    REQUEST_PASSWORD_CHANGE = auto()
    GIVE_UP = auto()


_S = ServerAuthState
_SS = _ServerStep
_SERVER_LISTENING = (_S.WAITING, _S.KEYBOARD_INTERACTIVE_PROMPTED)
_SERVER_REQUESTS = {
    _SS.GOT_NONE: _S.NONE_DECISION,
    _SS.GOT_PUBLICKEY_QUERY: _S.PUBLICKEY_QUERY_DECISION,
    _SS.GOT_PUBLICKEY: _S.PUBLICKEY_DECISION,
    _SS.GOT_PASSWORD: _S.PASSWORD_DECISION,
    _SS.GOT_KEYBOARD_INTERACTIVE: _S.KEYBOARD_INTERACTIVE_DECISION,
    _SS.REFUSE: _S.WAITING,
}
_DECISIONS = tuple(_SERVER_REQUESTS.values())[:-1]
SERVER_TRANSITIONS: dict[tuple[ServerAuthState, _ServerStep], ServerAuthState] = {
    **{(s, step): target for s in _SERVER_LISTENING for step, target in _SERVER_REQUESTS.items()},
    (_S.KEYBOARD_INTERACTIVE_PROMPTED, _SS.GOT_INFO_RESPONSE): _S.KEYBOARD_INTERACTIVE_DECISION,
    **{(d, _SS.REJECT): _S.WAITING for d in _DECISIONS},
    **{(d, _SS.ACCEPT): _S.AUTHENTICATED for d in _DECISIONS if d is not _S.PUBLICKEY_QUERY_DECISION},
    **{(s, _SS.GIVE_UP): _S.FAILED for s in (*_DECISIONS, *_SERVER_LISTENING)},
    (_S.PUBLICKEY_QUERY_DECISION, _SS.ACCEPT_KEY_QUERY): _S.WAITING,
    (_S.PASSWORD_DECISION, _SS.REQUEST_PASSWORD_CHANGE): _S.WAITING,
    (_S.KEYBOARD_INTERACTIVE_DECISION, _SS.SEND_INFO_REQUEST): _S.KEYBOARD_INTERACTIVE_PROMPTED,
}


class ServerAuth:
    """The server side of ssh-userauth. Each attempt event must be answered (``accept``,
    ``reject``, ...) before the next payload is handled; a driver that checks credentials
    asynchronously holds later payloads back until it has answered."""

    def __init__(
        self,
        session_id: bytes,
        send: Send,
        *,
        methods: tuple[str, ...] = ("publickey", "password"),
        max_attempts: int = 6,
        banner: str | None = None,
    ) -> None:
        unknown = [m for m in methods if m not in SERVER_METHODS]
        if unknown or max_attempts < 1:
            raise LocalProtocolError(f"unknown methods {unknown} or max_attempts {max_attempts} < 1")
        self.state = ServerAuthState.WAITING
        self.methods = methods
        self.max_attempts = max_attempts
        self.failures = 0
        self.user: str | None = None
        self.user_names: tuple[str, ...] = ()  # every distinct name tried, in order
        self.authenticated_user: str | None = None
        self.authenticated_method: str | None = None
        self._allowed = methods
        self._session_id = session_id
        self._send = send
        self._banner = banner
        self._method = ""
        self._key: tuple[str, bytes] = ("", b"")
        self._signature_valid = False
        self._prompt_count = 0

    @property
    def allowed_methods(self) -> tuple[str, ...]:
        """What a FAILURE lists; "none" is never listed (RFC 4252 §5.2)."""
        return tuple(m for m in self._allowed if m != "none")

    # -- inbound

    def handle(self, payload: bytes) -> list[ServerAuthEvent]:
        if not payload:
            raise DecodeError("empty payload where a userauth message was expected")
        msg_type = payload[0]
        if msg_type not in USERAUTH_RANGE:
            raise LocalProtocolError(f"ServerAuth.handle got {message_name(msg_type)}, not userauth")
        if self.state is ServerAuthState.AUTHENTICATED:
            return []  # RFC 4252 §5.1: requests after success are ignored
        if self.state is ServerAuthState.FAILED or self.state in _DECISIONS:
            raise LocalProtocolError(f"handle() called in state {self.state.name}; answer the attempt first")
        if msg_type == MsgType.USERAUTH_REQUEST:
            return self._on_request(UserauthRequest.decode(payload))
        if msg_type == MsgType.USERAUTH_INFO_RESPONSE:
            return [self._on_info_response(payload)]
        raise RemoteProtocolError(f"unexpected {message_name(msg_type)} from the client")

    def _on_request(self, req: UserauthRequest) -> list[ServerAuthEvent]:
        if req.service != CONNECTION_SERVICE:
            raise LocalProtocolError(
                f"USERAUTH_REQUEST for service {req.service!r:.64}, only {CONNECTION_SERVICE} is offered",
                DisconnectReason.SERVICE_NOT_AVAILABLE,
            )
        if self._banner is not None:
            self._send(UserauthBanner(self._banner).encode())
            self._banner = None
        if req.user != self.user:
            # RFC 4252 §5: a new user name flushes what earlier steps achieved.
            self.user = req.user
            self._allowed = self.methods
            if req.user not in self.user_names:
                self.user_names = (*self.user_names, req.user)
        self._method = req.method
        body = req.body
        if req.method not in self._allowed:
            self._refuse(counted=req.method != "none")
            return []
        if isinstance(body, NoneAuth):
            self._move(_SS.GOT_NONE, "USERAUTH_REQUEST")
            return [NoneAttempt(req.user)]
        if isinstance(body, PasswordAuth):
            self._move(_SS.GOT_PASSWORD, "USERAUTH_REQUEST")
            return [PasswordAttempt(req.user, body.password, body.new_password)]
        if isinstance(body, KeyboardInteractiveAuth):
            self._move(_SS.GOT_KEYBOARD_INTERACTIVE, "USERAUTH_REQUEST")
            return [KeyboardInteractiveStart(req.user, body.submethods)]
        assert isinstance(body, PublickeyAuth)
        return self._on_publickey(req.user, body)

    def _on_publickey(self, user: str, body: PublickeyAuth) -> list[ServerAuthEvent]:
        algorithm, blob = body.algorithm, body.public_key
        if not _usable_key(algorithm, blob):
            self._refuse(counted=True)  # like OpenSSH: an unusable key costs an attempt
            return []
        self._key = (algorithm, blob)
        if body.signature is None:
            self._move(_SS.GOT_PUBLICKEY_QUERY, "USERAUTH_REQUEST")
            return [PublicKeyQuery(user, algorithm, blob)]
        signed = publickey_signed_data(self._session_id, user, CONNECTION_SERVICE, algorithm, blob)
        try:
            verify_signature(algorithm, blob, body.signature, signed)
            self._signature_valid = True
        except SSHError:
            self._signature_valid = False
        self._move(_SS.GOT_PUBLICKEY, "USERAUTH_REQUEST")
        return [PublicKeyAttempt(user, algorithm, blob, self._signature_valid)]

    def _on_info_response(self, payload: bytes) -> KeyboardInteractiveResponse:
        msg = UserauthInfoResponse.decode(payload)
        self._move(_SS.GOT_INFO_RESPONSE, "USERAUTH_INFO_RESPONSE")
        if len(msg.responses) != self._prompt_count:
            raise RemoteProtocolError(
                f"USERAUTH_INFO_RESPONSE with {len(msg.responses)} responses to {self._prompt_count} prompts"
            )
        assert self.user is not None
        return KeyboardInteractiveResponse(self.user, msg.responses)

    # -- driver decisions

    def accept(self) -> Authenticated:
        if self.state is ServerAuthState.PUBLICKEY_DECISION and not self._signature_valid:
            raise LocalProtocolError("cannot accept a publickey attempt whose signature did not verify")
        self._move(_SS.ACCEPT, "accept")
        assert self.user is not None
        self.authenticated_user, self.authenticated_method = self.user, self._method
        self._send(UserauthSuccess().encode())
        return Authenticated(self.user, self._method)

    def reject(self, partial_success: bool = False, remaining_methods: Sequence[str] | None = None) -> None:
        """Refuse the attempt. With ``partial_success`` this step passed but more are needed;
        ``remaining_methods`` narrows what the client may still try."""
        if self.state not in _DECISIONS:
            raise LocalProtocolError(f"cannot reject in state {self.state.name}: no attempt is pending")
        if partial_success and self.state is ServerAuthState.PUBLICKEY_QUERY_DECISION:
            raise LocalProtocolError("a publickey query cannot be a partial success")
        if remaining_methods is not None:
            unknown = [m for m in remaining_methods if m not in self.methods]
            if unknown:
                raise LocalProtocolError(f"remaining methods {unknown} were not offered")
            self._allowed = tuple(remaining_methods)
        counted = not partial_success and self._method != "none"
        if counted:
            self._count_failure()
        self._move(_SS.REJECT, "reject")
        self._send(UserauthFailure(self.allowed_methods, partial_success).encode())

    def accept_key_query(self) -> None:
        self._move(_SS.ACCEPT_KEY_QUERY, "accept a key query")
        self._send(UserauthPkOk(*self._key).encode())

    def send_info_request(self, name: str, instruction: str, prompts: Sequence[tuple[str, bool]]) -> None:
        if len(prompts) > MAX_PROMPTS:
            raise LocalProtocolError(f"{len(prompts)} prompts (limit {MAX_PROMPTS})")
        self._move(_SS.SEND_INFO_REQUEST, "send an info request")
        self._prompt_count = len(prompts)
        request = UserauthInfoRequest(name, instruction, tuple(Prompt(text, echo) for text, echo in prompts))
        self._send(request.encode())

    def request_password_change(self, prompt: str) -> None:
        self._move(_SS.REQUEST_PASSWORD_CHANGE, "request a password change")
        self._send(UserauthPasswdChangereq(prompt).encode())

    # -- internals

    def _refuse(self, counted: bool) -> None:
        if counted:
            self._count_failure()
        self._move(_SS.REFUSE, "USERAUTH_REQUEST")
        self._send(UserauthFailure(self.allowed_methods, False).encode())

    def _count_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.max_attempts:
            self._move(_SS.GIVE_UP, "give up")
            raise TooManyAttempts(self.user or "", self.failures)

    def _move(self, step: _ServerStep, what: str) -> None:
        target = SERVER_TRANSITIONS.get((self.state, step))
        if target is None:
            if step.name.startswith("GOT_"):
                raise RemoteProtocolError(f"unexpected {what} in state {self.state.name}")
            raise LocalProtocolError(f"cannot {what} in state {self.state.name}")
        self.state = target
