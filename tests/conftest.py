"""Shared test fixtures: the feed corpus, and running the CLI."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest
from click.testing import CliRunner, Result
from hypothesis import settings as hypothesis_settings

from cepletter.cli.env import Env
from cepletter.cli.main import cli

REPO = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def missing(reason: str) -> NoReturn:
    """Skip a test whose outside part (a browser, a server, a corpus) is not here, except in CI.

    CI installs every such part, so there a missing one is a failure: a skip
    would hide that the tests protecting users did not run.
    """
    if in_ci():
        pytest.fail(f"{reason}, and CI must run this test")
    pytest.skip(reason)


# In CI the property tests run the same examples every time, so a red run always
# means a real regression; a found counterexample is then kept with @example.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if in_ci():
    hypothesis_settings.load_profile("ci")


def corpus_dir() -> Path | None:
    """The real-world feed corpus: $CEPLETTER_FEED_CORPUS or ../shared/corpus/feeds."""
    env = os.environ.get("CEPLETTER_FEED_CORPUS")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "corpus" / "feeds")
    for path in candidates:
        if (path / "MANIFEST.tsv").is_file():
            return path
    return None


@pytest.fixture
def corpus() -> Path:
    path = corpus_dir()
    if path is None:
        missing("feed corpus not found: set CEPLETTER_FEED_CORPUS or place shared/ beside the repo")
    return path


@pytest.fixture(autouse=True)
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read this machine's real keyring, and no password in the environment unless a test sets one."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("CEPLETTER_SMTP_PASSWORD", raising=False)
    monkeypatch.delenv("CEPLETTER_IMAP_PASSWORD", raising=False)


Invoke = Callable[..., Result]


@pytest.fixture
def run() -> Invoke:
    """Run the CLI in-process: run("-C", str(ws), "items") -> click Result (stdout, stderr apart)."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None,
               terminal: Env | None = None) -> Result:
        """``terminal``: an Env saying which streams to treat as terminals."""
        runner = CliRunner()
        return runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=False, obj=terminal)

    return invoke
