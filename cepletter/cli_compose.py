"""Commands that make content: init, items, draft."""

from __future__ import annotations

from cepletter.cli import cli  # noqa: F401
