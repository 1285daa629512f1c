"""Benchmark inputs, generated from a fixed seed so that reruns are byte-identical.

- a WordPress-style RSS 2.0 feed of N items with ~2.8 KB of HTML each
  (relative image links, categories, media:content), like the feeds the
  newsletter is made from;
- subscriber lists of N rows (example.org addresses, some non-Latin names);
- the cepletter.toml of a benchmark workspace;
- the template, database and server config that mailmerge needs to send the
  same newsletter to the same list.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

WORDS = (
    "probation", "service", "community", "sentence", "rehabilitation", "desistance",
    "offender", "supervision", "mental", "health", "workshop", "conference", "europe",
    "network", "practice", "research", "training", "staff", "electronic", "monitoring",
    "restorative", "justice", "victims", "family", "prison", "release", "support", "housing",
    "employment", "education", "volunteer", "project", "partnership", "policy", "council",
    "report", "assessment", "risk", "needs", "responsivity", "programme", "evaluation",
    "pilot", "region", "court", "judge",
)
CATEGORIES = ("Mental Health", "Reading corner", "CEP Events", "Probation practice", "Research", "Members")
FIRST = ("Anna", "Luca", "Zoë", "Łukasz", "Marie", "Jan", "Søren", "Ana", "Γιώργος", "Ines", "Tomás", "Eva")
LAST = ("Janssens", "Rossi", "Müller", "Nowak", "Dubois", "de Vries", "Jensen", "García", "Παπαδόπουλος", "Silva")
START = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)


def _sentence(rng: random.Random, low: int = 8, high: int = 18) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def feed_xml(items: int, seed: int = 5) -> str:
    """An RSS 2.0 feed of ``items`` news posts, newest first."""
    rng = random.Random(seed)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/">\n'
        "<channel>\n<title>CEP news (benchmark)</title>\n<link>https://example.org/</link>\n"
        "<description>Generated news posts</description>\n<language>en-GB</language>\n"
    ]
    for i in range(items):
        title = _sentence(rng, 4, 9).rstrip(".")
        slug = f"news-{i:05d}"
        link = f"https://example.org/{slug}/"
        when = format_datetime(START - timedelta(hours=7 * i))
        category = CATEGORIES[i % len(CATEGORIES)]
        summary = _paragraph(rng, 2)
        body = "".join(
            [
                f'<p><img src="/wp-content/uploads/2025/11/{slug}.jpg" width="600" height="338" '
                f'alt="{escape(title)}" /></p>',
                *(f"<p>{_paragraph(rng, 3)}</p>" for _ in range(5)),
                f'<p>See <a href="/about/{slug}/">the project page</a> and '
                f'<a href="https://example.org/reports/{i}.pdf">the report</a>.</p>',
            ]
        )
        out.append(
            "<item>\n"
            f"<title>{escape(title)}</title>\n<link>{link}</link>\n"
            f"<dc:creator>{escape(rng.choice(FIRST))} {escape(rng.choice(LAST))}</dc:creator>\n"
            f"<pubDate>{when}</pubDate>\n<category><![CDATA[{category}]]></category>\n"
            f'<guid isPermaLink="false">https://example.org/?p={10000 + i}</guid>\n'
            f"<description><![CDATA[<p>{summary}</p>]]></description>\n"
            f"<content:encoded><![CDATA[{body}]]></content:encoded>\n"
            f'<media:content url="https://example.org/wp-content/uploads/2025/11/{slug}.jpg" '
            'medium="image" width="600" height="338" />\n'
            "</item>\n"
        )
    out.append("</channel>\n</rss>\n")
    return "".join(out)


def write_feed(path: Path, items: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(feed_xml(items), encoding="utf-8")
    return path


def subscriber_rows(count: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [
        (f"reader{i:06d}@example.org", f"{rng.choice(FIRST)} {rng.choice(LAST)}") for i in range(count)
    ]


def write_subscribers(path: Path, count: int) -> Path:
    """A subscribers.csv with header ``email,name``; written in one pass (100,000 rows is 4 MB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("email,name\n")
        for email, name in subscriber_rows(count):
            fh.write(f"{email},{name}\n")
    return path


def workspace_toml(
    *, port: int | None = None, transport: str = "maildir", connections: int = 1, security: str = "none",
    ca_file: Path | None = None, subscribers: str = "subscribers.csv",
) -> str:
    """A benchmark workspace's cepletter.toml: no rate limit to speak of, and the sink as relay.

    ``security`` and ``ca_file`` go to [smtp] as a user writes them for a
    relay with a private certificate.
    """
    smtp = ""
    if port is not None:
        smtp = f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\ntimeout = 60\n'
        if ca_file is not None:
            smtp += f"ca_file = {json.dumps(str(ca_file))}\n"
    return (
        "[newsletter]\n"
        'name = "CEP Newsletter"\n'
        'from = "CEP <newsletter@example.org>"\n'
        'reply_to = "communications@example.org"\n'
        'web_url = "https://example.org/newsletter/"\n'
        'unsubscribe_url = "https://example.org/unsubscribe?email={email}&t={token}"\n'
        'unsubscribe_mailto = "unsubscribe@example.org"\n'
        'postal_address = "CEP, Reitschulstrasse 1, 3000 Bern"\n'
        "\n[delivery]\n"
        f'transport = "{transport}"\n'
        'maildir = "outbox"\n'
        f"subscribers = {json.dumps(subscribers)}\n"
        'suppressed = "suppressed.csv"\n'
        "rate = 1000000\n"
        f"connections = {connections}\n"
        "retries = 2\n"
        "retry_max_seconds = 30\n"
        f"{smtp}"
    )


def write_workspace(
    root: Path, *, port: int | None = None, transport: str = "maildir", connections: int = 1, security: str = "none",
    ca_file: Path | None = None, subscribers: str = "subscribers.csv",
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "issues").mkdir(exist_ok=True)
    (root / "cepletter.toml").write_text(
        workspace_toml(port=port, transport=transport, connections=connections, security=security,
                       ca_file=ca_file, subscribers=subscribers),
        encoding="utf-8",
    )
    suppressed = root / "suppressed.csv"
    if not suppressed.exists():
        suppressed.write_text("email\n", encoding="utf-8")
    return root


# ---------------------------------------------------------------- mailmerge


def mailmerge_files(
    folder: Path, *, port: int, subscribers: Path, html: str, subject: str, text: str | None = None,
    starttls: bool = False,
) -> dict[str, Path]:
    """mailmerge's template, database and config for the same newsletter and list.

    The main template is a single text/html part, the fastest form mailmerge
    has. Given ``text``, a second template ("template_multipart") carries
    text and HTML as multipart/alternative, as cepletter sends them; with it
    mailmerge parses the HTML with html5lib for every message (looking for
    inline images) and runs several times slower. The newsletter is wrapped in
    {% raw %} so that Jinja leaves its CSS alone; To is the recipient's address.
    With ``starttls``, mailmerge's STARTTLS mode, which always logs in (its
    password is read from standard input).
    """
    folder.mkdir(parents=True, exist_ok=True)
    head = (
        "TO: {{email}}\n"
        f"SUBJECT: {subject}\n"
        "FROM: CEP <newsletter@example.org>\n"
        "MIME-Version: 1.0\n"
    )
    paths = {
        "template": folder / "mailmerge_template.txt",
        "database": subscribers,
        "config": folder / "mailmerge_server.conf",
    }
    paths["template"].write_text(
        head + 'Content-Type: text/html; charset="utf-8"\n\n{% raw %}' + html + "{% endraw %}\n",
        encoding="utf-8",
    )
    if text is not None:
        b = "==cepletter-bench-boundary=="
        paths["template_multipart"] = folder / "mailmerge_template_multipart.txt"
        paths["template_multipart"].write_text(
            head
            + f'Content-Type: multipart/alternative; boundary="{b}"\n\n'
            + f'--{b}\nContent-Type: text/plain; charset="utf-8"\n\n{{% raw %}}{text}{{% endraw %}}\n'
            + f'--{b}\nContent-Type: text/html; charset="utf-8"\n\n{{% raw %}}{html}{{% endraw %}}\n'
            + f"--{b}--\n",
            encoding="utf-8",
        )
    security = "security = STARTTLS\nusername = bench\n" if starttls else ""
    paths["config"].write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\n{security}ratelimit = 0\n", encoding="utf-8"
    )
    return paths
