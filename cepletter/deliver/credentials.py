"""Passwords and certificates for the mail servers cepletter talks to (SMTP out, IMAP back in).

A password never lives in a workspace file: it comes from an environment
variable or the system keyring. TLS is always verified, against the system's
authorities plus, when configured, a private one.
"""

from __future__ import annotations

import os
import ssl

from cepletter.config import Settings
from cepletter.errors import CepletterError


def password(env_var: str, keyring_service: str, username: str, host: str, protocol: str,
             error: type[CepletterError]) -> str:
    """The password for ``username`` on ``host``: ``env_var`` first, then the keyring; else ``error``."""
    found = os.environ.get(env_var)
    if found:
        return found
    account = f"{username}@{host}"
    try:
        import keyring

        found = keyring.get_password(keyring_service, account)
    except Exception:  # any keyring backend failure means "no password from there"
        found = None
    if not found:
        raise error(
            f"no {protocol} password for {username} on {host}",
            f"Set {env_var}, or store it in the system keyring: keyring set {keyring_service} {account}",
        )
    return found


def tls_context(ca_file: str | None, settings: Settings, table: str, error: type[CepletterError]) -> ssl.SSLContext:
    """A verifying context: the system store plus ``ca_file`` (from ``[table]``) when given."""
    context = ssl.create_default_context()
    if ca_file:
        ca = settings.path(ca_file)
        try:
            context.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError) as exc:
            raise error(
                f"cepletter.toml: [{table}] ca_file: cannot load {ca}: {exc}",
                "Point ca_file at a PEM file with the certificate authority.",
            ) from None
    return context
