"""The web archive command: archive."""

from __future__ import annotations

from cepletter.cli import cli  # noqa: F401
