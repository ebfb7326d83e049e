"""What the ssh-userauth state machines (RFC 4252 §5-§8, RFC 4256 §3) report to their drivers,
and the attempt records of the connection timeline.

Client events come from ``ClientAuth.handle``, server events from ``ServerAuth.handle`` and its
``accept``. Passwords and keyboard-interactive responses are kept out of every repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AttemptResult = Literal["success", "failure", "partial", "pk_ok"]


# --- client ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthBanner:
    text: str  # already escaped for display


@dataclass(frozen=True, slots=True)
class AuthFailed:
    allowed: tuple[str, ...]
    partial_success: bool
    method: str


@dataclass(frozen=True, slots=True)
class AuthSucceeded:
    method: str


@dataclass(frozen=True, slots=True)
class PublicKeyAccepted:
    """USERAUTH_PK_OK: the server would take a signature from this key; sign and send it."""

    algorithm: str
    public_blob: bytes


@dataclass(frozen=True, slots=True)
class PasswordChangeRequested:
    prompt: str  # escaped


@dataclass(frozen=True, slots=True)
class InfoRequested:
    """A keyboard-interactive round; answer with ``send_info_response`` even when there are
    no prompts (RFC 4256 §3.4). All text is escaped; each prompt is ``(text, echo)``."""

    name: str
    instruction: str
    prompts: tuple[tuple[str, bool], ...]


AuthEvent = (
    AuthBanner | AuthFailed | AuthSucceeded | PublicKeyAccepted | PasswordChangeRequested | InfoRequested
)


@dataclass(frozen=True, slots=True)
class AuthAttempt:
    """One answered request, for the connection timeline. Never holds a secret."""

    method: str
    key_type: str | None
    fingerprint: str | None
    result: AttemptResult
    allowed: tuple[str, ...]
    partial_success: bool


# --- server ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoneAttempt:
    user: str


@dataclass(frozen=True, slots=True)
class PublicKeyQuery:
    """Would this key do? Answer with ``accept_key_query()`` or ``reject()``."""

    user: str
    algorithm: str
    public_blob: bytes


@dataclass(frozen=True, slots=True)
class PublicKeyAttempt:
    """A signed request; ServerAuth has checked the signature. Only a valid one may be accepted."""

    user: str
    algorithm: str
    public_blob: bytes
    signature_valid: bool


@dataclass(frozen=True, slots=True)
class PasswordAttempt:
    user: str
    password: str = field(repr=False)
    new_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class KeyboardInteractiveStart:
    user: str
    submethods: str


@dataclass(frozen=True, slots=True)
class KeyboardInteractiveResponse:
    user: str
    responses: tuple[str, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Authenticated:
    user: str
    method: str


ServerAuthEvent = (
    NoneAttempt | PublicKeyQuery | PublicKeyAttempt | PasswordAttempt
    | KeyboardInteractiveStart | KeyboardInteractiveResponse | Authenticated
)

