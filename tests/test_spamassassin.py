"""SpamAssassin, a judge nobody here wrote, scores the newsletter of a fresh workspace as clean.

It runs on a message exactly as `send` delivered it to the Maildir, with local
rules only (`-L`: no DNS blocklists, no network) and without Bayes (nothing
learnt). Skipped with a reason when spamassassin is not installed, except
in CI, where that fails: `.ci/run` installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from conftest import Invoke, missing

# Below this a message is not near any filter's threshold (SpamAssassin's default is 5.0).
MAX_SCORE = 1.0
INTRO = ("Welcome to the December issue. Our members met in Utrecht, a new report on staff"
         " wellbeing is out, and the 2026 calendar is ready.\n")


def spamassassin() -> str:
    found = shutil.which("spamassassin")
    if found is None:
        missing("spamassassin is not installed (apt-get install spamassassin to run this test)")
    return found


def score(program: str, message: bytes, home: Path) -> tuple[float, list[str]]:
    """SpamAssassin's score and the rules that fired, with local tests only and no Bayes."""
    home.mkdir(exist_ok=True)
    result = subprocess.run(
        [program, "-t", "-L", "--cf=use_bayes 0", "-p", str(home / "user_prefs")],
        input=message, capture_output=True, timeout=300, check=False,
        env={**os.environ, "HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    headers = result.stdout.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    status = re.search(r"^X-Spam-Status: (.*(?:\n[ \t].*)*)", headers, re.M)
    assert status is not None, headers
    text = re.sub(r",\s+", ",", " ".join(status.group(1).split()))  # the rule list is folded after commas
    points = re.search(r"score=(-?[0-9.]+)", text)
    rules = re.search(r"tests=(\S*)", text)
    assert points is not None and rules is not None, text
    return float(points.group(1)), [r for r in rules.group(1).split(",") if r and r != "none"]


def test_a_fresh_workspace_newsletter_scores_well_below_the_spam_threshold(tmp_path: Path, run: Invoke) -> None:
    program = spamassassin()
    ws = tmp_path / "demo"
    assert run("init", str(ws)).exit_code == 0
    drafted = run("-C", str(ws), "draft", "--all")
    assert drafted.exit_code == 0, drafted.stderr
    # The intro a person writes in place of the placeholder draft leaves.
    (issue_file,) = ws.glob("issues/*/issue.md")
    text = issue_file.read_text(encoding="utf-8")
    end = text.index("\n---\n", 3) + len("\n---\n")
    issue_file.write_text(text[:end] + "\n" + INTRO, encoding="utf-8")
    sent = run("-C", str(ws), "send", "--yes")
    assert sent.exit_code == 0, sent.stderr
    messages = sorted((ws / "outbox" / "new").iterdir())
    assert len(messages) == 5
    points, rules = score(program, messages[0].read_bytes(), tmp_path / "home")
    # The two rules the default theme and the sample settings used to trip.
    assert "HTML_FONT_LOW_CONTRAST" not in rules and "GB_CUSTOM_HTM_URI" not in rules, rules
    assert points < MAX_SCORE, (points, rules)
