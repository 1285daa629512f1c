"""Commands that publish and sign off: archive, approve."""

from __future__ import annotations

from cepletter.cli import cli  # noqa: F401
