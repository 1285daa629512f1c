"""Commands that deliver: send, export, approve."""

from __future__ import annotations

from cepletter.cli import cli  # noqa: F401
