"""Shared-secret tokens and listen addresses for lerobot's network services (policy server, LeKiwi host).

A service that listens on a port drives motors, so two rules hold for every one of them: it binds
``127.0.0.1`` unless the operator names another address, and it refuses to listen beyond this machine
without a token unless the operator explicitly accepts the risk (``allow_unauthenticated``). Tokens
come from a flag or, better (a flag shows in ``ps``), from an environment variable; they are never
logged and are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os

MIN_TOKEN_CHARS = 16
TOKEN_HINT = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(24))"'


def resolve_token(value: str | None, env_var: str) -> str | None:
    """The token from the flag, else from ``env_var``; ``None`` when neither is set.

    Too short a token is refused: the HMAC challenge and the key derivation below make a token as
    strong as its guessability, and a short one can be brute-forced from one captured handshake.
    """
    token = value if value else os.environ.get(env_var) or None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"The auth token (flag or ${env_var}) has {len(token)} characters; use at least "
            f"{MIN_TOKEN_CHARS} random ones ({TOKEN_HINT})."
        )
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (``localhost``, ``127.x``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or ``*``: assume it is reachable from elsewhere


def check_exposure(
    host: str, token: str | None, allow_unauthenticated: bool, service: str, env_var: str, flags: str = "--"
) -> None:
    """Refuse to listen beyond loopback without a token, unless the operator opted out (then warn).

    ``flags`` prefixes the flag names in the message (``--host.`` for ``--host.auth_token``).
    """
    if token is not None or is_loopback(host):
        return
    message = (
        f"{service} would listen on {host!r} without a token: anyone who reaches the port could drive "
        f"the robot. Set ${env_var} (or {flags}auth_token; {TOKEN_HINT})"
    )
    if not allow_unauthenticated:
        raise ValueError(
            message + f", or pass {flags}allow_unauthenticated=true on a network you fully trust."
        )
    logging.getLogger(__name__).warning("%s. Continuing because allow_unauthenticated is set.", message)


def hmac_hex(token: str, challenge: str) -> str:
    """The proof that a peer knows ``token``, for one server-chosen ``challenge`` (never the token itself)."""
    return hmac.new(token.encode(), challenge.encode(), hashlib.sha256).hexdigest()


def same_secret(expected: str, given: object) -> bool:
    """Constant-time comparison that also accepts garbage (non-strings, non-ASCII) as simply wrong."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
