"""From ``ConnectionSettings`` to the client's ``ClientOptions``: trust, key rotation, keys and timers.

The host key algorithms offered put the key types known_hosts holds for the host first, and
certificate algorithms before them when an ``@cert-authority`` line covers it, as ssh(1) does;
StrictHostKeyChecking, HashKnownHosts, UpdateHostKeys and BatchMode (ssh_config(5)) choose the
trust policy, the host-key rotation mode (OpenSSH PROTOCOL "hostkeys-00@openssh.com") and whether
anything is asked.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from typing import TYPE_CHECKING, TextIO

from sshtui.ssh.config import ECDSA_HOST_KEY_ALGORITHMS, TransportConfig
from sshtui.ssh.crypto.hostkeys import HOST_KEY_ALGORITHMS

if TYPE_CHECKING:
    from sshtui.net.client import ClientOptions
    from sshtui.options import ConnectionSettings
    from sshtui.prompts import Prompter


def host_key_offer(
    settings: ConnectionSettings, known_types: Collection[str], *, cert_authority: bool = False
) -> tuple[str, ...]:
    """The host key algorithms to offer: with the default list, those matching key types that
    known_hosts already holds for this host go first (ECDSA ones are added for that), so a
    known server is not met with a key type we would have to treat as new; before them the
    certificate algorithms when a ``@cert-authority`` line covers the host."""
    from sshtui.net.trust import certificates_first

    configured = settings.host_key_algorithms
    if settings.host_key_algorithms_set or not (known_types or cert_authority):
        return configured
    candidates = (*configured, *(a for a in ECDSA_HOST_KEY_ALGORITHMS if a not in configured))
    preferred = tuple(a for a in candidates if HOST_KEY_ALGORITHMS[a].key_type in known_types)
    offer = preferred + tuple(a for a in configured if a not in preferred)
    return certificates_first(offer) if cert_authority else offer


def transport_config(settings: ConnectionSettings, host_key_algorithms: tuple[str, ...]) -> TransportConfig:
    return TransportConfig(
        kex_algorithms=settings.kex_algorithms,
        host_key_algorithms=host_key_algorithms,
        ciphers=settings.ciphers,
        macs=settings.macs,
        rekey_bytes=settings.rekey_bytes,
        rekey_seconds=settings.rekey_seconds,
    )


def build_client_options(
    settings: ConnectionSettings, prompter: Prompter, notices: TextIO | None = None
) -> ClientOptions:
    """``ClientOptions`` for ``connect()``: trust policy from known_hosts, prompts, keys, timers.

    Notices such as "Permanently added ... to the list of known hosts" go to ``notices``
    (stderr by default), as ssh(1) prints them."""
    from sshtui.net.auth import AuthOptions
    from sshtui.net.client import ClientOptions
    from sshtui.net.hostkey_rotation import HostKeyUpdater, accepted_key_types, yes_no
    from sshtui.net.trust import TrustPolicy
    from sshtui.store.known_hosts import KnownHosts

    interactive = not settings.batch_mode  # BatchMode: methods that need an answer are not even tried
    files = settings.user_known_hosts_files
    known = KnownHosts.load(files)
    offer = host_key_offer(
        settings,
        known.known_key_types(settings.host, settings.port),
        cert_authority=known.has_cert_authority(settings.host, settings.port),
    )
    policy = TrustPolicy(
        files,
        strict=settings.strict_host_key_checking,
        hash_known_hosts=settings.hash_known_hosts,
        ask=prompter.confirm_host_key if interactive else None,
    )
    rotation_mode = settings.update_host_keys or ("ask" if interactive else "no")
    updater = HostKeyUpdater(
        files,
        rotation_mode,
        # Keys the server lists are learned only if we would accept them in a key exchange.
        accepted_key_types=accepted_key_types(
            offer if settings.host_key_algorithms_set else (*offer, *ECDSA_HOST_KEY_ALGORITHMS)
        ),
        hash_known_hosts=settings.hash_known_hosts,
        confirm=yes_no(lambda question: prompter.ask(question, echo=True)) if interactive else None,
        on_learned=(
            (lambda record: print(f"sshtui: {record.describe()}", file=notices or sys.stderr, flush=True))
            if rotation_mode == "ask"
            else None
        ),
    )

    async def verify(host: str, port: int, algorithm: str, key_blob: bytes) -> object:
        outcome = await policy.verify(host, port, algorithm, key_blob)
        if outcome.notice:
            print(f"sshtui: Warning: {outcome.notice}", file=notices or sys.stderr, flush=True)
        return outcome

    auth = AuthOptions(
        identity_files=settings.identity_files,
        identities_only=settings.identities_only,
        password_prompt=prompter.password if interactive else None,
        passphrase_prompt=prompter.passphrase if interactive else None,
        kbdint_prompt=prompter.keyboard_interactive if interactive else None,
        banner_callback=prompter.banner,
        notice_callback=prompter.notice,
        pubkey_algorithms=settings.pubkey_accepted_algorithms,
    )
    return ClientOptions(
        host=settings.host,
        port=settings.port,
        username=settings.user or "",
        transport=transport_config(settings, offer),
        auth=auth,
        verify_host_key=verify,
        on_host_keys=updater if rotation_mode != "no" else None,
        connect_timeout=settings.connect_timeout,
        server_alive_interval=settings.server_alive_interval,
        server_alive_count_max=settings.server_alive_count_max,
    )
