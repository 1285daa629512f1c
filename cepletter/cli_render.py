"""Commands that render: preview, check."""

from __future__ import annotations

from cepletter.cli import cli  # noqa: F401
