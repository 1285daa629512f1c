"""The SMTP login, in UTF-8, and keeping the password out of what a server says back.

smtplib's ``login`` encodes the credentials as ASCII, so a password such as
``pässwörd`` ends in an UnicodeEncodeError before anything is sent. RFC 4616
(AUTH PLAIN) says UTF-8, and servers take the same bytes for AUTH LOGIN and
as CRAM-MD5's key; `login` sends them so. It tries the mechanisms the server
offers in smtplib's order (CRAM-MD5, PLAIN, LOGIN) and raises smtplib's own
errors, so callers handle a refusal as before.

Some servers echo what they were sent in their 535 reply, decoded or as the
base64 the client wrote. `Secrets.hide` takes the password out of such text
in every form it went out in, before anything shows or keeps it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import smtplib

MECHANISMS = ("CRAM-MD5", "PLAIN", "LOGIN")  # smtplib's order of preference
HIDDEN = "[password hidden]"


def login(client: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH with ``user`` and ``password`` as UTF-8; SMTPAuthenticationError (the last refusal) if none works."""
    client.ehlo_or_helo_if_needed()
    if not client.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    offered = client.esmtp_features["auth"].upper().split()
    refusal: smtplib.SMTPAuthenticationError | None = None
    for mechanism in (m for m in MECHANISMS if m in offered):
        code, reply = _authenticate(client, mechanism, user.encode("utf-8"), password.encode("utf-8"))
        if code in (235, 503):  # 503: already authenticated, as smtplib counts it
            return
        refusal = smtplib.SMTPAuthenticationError(code, reply)
    if refusal is None:
        raise smtplib.SMTPException("No suitable authentication method found.")
    raise refusal


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _authenticate(client: smtplib.SMTP, mechanism: str, user: bytes, password: bytes) -> tuple[int, bytes]:
    if mechanism == "PLAIN":
        return client.docmd("AUTH", "PLAIN " + _b64(b"\0" + user + b"\0" + password))
    if mechanism == "LOGIN":
        # The user name as the initial response, the password in answer to the 334 (as smtplib does).
        code, reply = client.docmd("AUTH", "LOGIN " + _b64(user))
        if code == 334:
            code, reply = client.docmd(_b64(password))
        return code, reply
    code, reply = client.docmd("AUTH", "CRAM-MD5")
    if code != 334:
        return code, reply
    try:
        challenge = base64.b64decode(reply, validate=True)
    except binascii.Error:
        client.docmd("*")  # RFC 4954: cancel the exchange
        return 501, b"5.5.2 the server's CRAM-MD5 challenge is not base64"
    digest = hmac.new(password, challenge, "md5").hexdigest()
    return client.docmd(_b64(user + b" " + digest.encode("ascii")))


class Secrets:
    """The password and every form a login sent it in, to take out of server replies."""

    def __init__(self, user: str, password: str) -> None:
        raw = password.encode("utf-8")
        sent = {
            password,
            " ".join(password.split()),  # as a reply looks once its whitespace is folded
            _b64(raw),  # AUTH LOGIN's second step
            _b64(b"\0" + user.encode("utf-8") + b"\0" + raw),  # AUTH PLAIN
            _b64(user.encode("utf-8") + b"\0" + raw),
        }
        # The base64 of any text with the password inside: the characters that come from the
        # password's bytes alone, for each of the three places it can start in a 3-byte group.
        for start in range(3):
            core = raw[start:]
            core = core[: len(core) // 3 * 3]
            if len(core) >= 6:  # 8 characters or more: shorter ones would turn up by chance
                sent.add(_b64(core))
        self.forms = sorted((form for form in sent if form), key=len, reverse=True)

    def hide(self, text: str) -> str:
        """``text`` with every form of the password replaced by "[password hidden]"."""
        for form in self.forms:
            text = text.replace(form, HIDDEN)
        return text


def hide(text: str | bytes, user: str | None, password: str | None) -> str:
    """Server text (bytes as UTF-8) with the password's forms hidden; as it is when there is no password."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return Secrets(user or "", password).hide(text) if password else text
