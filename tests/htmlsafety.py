"""Checks that HTML is safe to put in an email: used by the sanitiser and corpus tests."""

from __future__ import annotations

from html.parser import HTMLParser


class _Collect(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def tags_of(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Collect()
    parser.feed(html)
    parser.close()
    return parser.tags


def assert_safe(html: str) -> None:
    """No script, style, frame or form; no event handler; no javascript:/data: URL; only http(s)/mailto."""
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<style" not in lowered
    assert "<iframe" not in lowered
    for tag, attrs in tags_of(html):
        assert tag not in {"script", "style", "iframe", "object", "embed", "form", "input", "svg", "math"}
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert name != "style", (tag, name)
            if name in ("href", "src"):
                assert value is not None
                scheme = value.split(":", 1)[0].lower().strip()
                assert scheme in (("http", "https") if name == "src" else ("http", "https", "mailto")), value
