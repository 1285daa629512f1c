"""Reading the workspace's sources (feeds and Markdown folders) into Items.

A source is a web feed (url), a feed file (path), a folder of Markdown files,
or a calendar (kind "ics", read by ``events`` for the events section, not
here). Parsed feeds are cached so an unchanged source is not parsed again and a
web feed that is down still gives its last items, with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cepletter.config import FetchSettings, Settings, SourceSettings
from cepletter.errors import SourceError
from cepletter.sources import itemcache as cache
from cepletter.sources.items import Item

Warn = Callable[[str], None]


def _no_warn(message: str) -> None:
    pass


def source_kind(source: SourceSettings, root: Path | None = None) -> str:
    """"feed", "markdown" or "ics": as configured, else from the file or URL."""
    if source.kind:
        return source.kind
    location = source.location
    lowered = urlsplit(location).path.lower() if source.url else location.lower()
    if lowered.endswith((".ics", ".ical", ".ifb", ".icalendar")):
        return "ics"
    if source.path is not None:
        if lowered.endswith((".md", ".markdown")) or lowered.endswith("/"):
            return "markdown"
        path = Path(location).expanduser()
        if root is not None and not path.is_absolute():
            path = root / path
        if path.is_dir():
            return "markdown"
    return "feed"


def adhoc_source(feed: str) -> SourceSettings:
    """A source for ``--feed URL_OR_PATH``, named after the host or the file."""
    if "://" in feed:
        parts = urlsplit(feed)
        if parts.scheme.lower() not in ("http", "https"):
            raise SourceError(f"{feed}: only http:// and https:// addresses can be fetched",
                              "Give a local feed as a plain file path instead.")
        return SourceSettings(name=parts.hostname or feed, url=feed)
    return SourceSettings(name=Path(feed).name or feed, path=feed)


def read_items(sources: list[SourceSettings], settings: Settings | None, *,
               warn: Warn = _no_warn) -> list[Item]:
    """Every item of ``sources`` (calendar sources skipped).

    An item that an earlier source already gave (same id or link) is left out;
    within one source ids are unique already, and two posts may share a link.
    """
    items: list[Item] = []
    seen: set[str] = set()
    for source in sources:
        mine = read_source(source, settings, warn=warn)
        items.extend(i for i in mine if i.id not in seen and i.link not in seen)
        seen.update(i.id for i in mine)
        seen.update(i.link for i in mine if i.link)
    return items


def read_source(source: SourceSettings, settings: Settings | None, *, warn: Warn = _no_warn) -> list[Item]:
    root = settings.root if settings is not None else None
    kind = source_kind(source, root)
    if kind == "ics":
        return []
    fetch_settings = settings.fetch if settings is not None else FetchSettings()
    cache_dir = settings.cache_dir if settings is not None else None
    if kind == "markdown":
        from cepletter.sources.markdown import read_markdown

        tz = settings.newsletter.timezone if settings is not None else "UTC"
        return read_markdown(_local_path(source, root), name=source.name, where=_where(source), timezone=tz)
    if source.url is not None:
        return _read_url_feed(source, fetch_settings, cache_dir, warn)
    return _read_file_feed(source, _local_path(source, root), fetch_settings, cache_dir, warn)


def _where(source: SourceSettings) -> str:
    return f"source {source.name!r} ({source.location})" if source.name != source.location else source.location


def _local_path(source: SourceSettings, root: Path | None) -> Path:
    path = Path(source.location).expanduser()
    if root is not None and not path.is_absolute():
        path = root / path
    return path


def _sha256(data: bytes) -> str:
    import hashlib  # only when a document was read: it slows the start of a cached run

    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse(data: bytes, source: SourceSettings, base: str | None, fetch: FetchSettings, warn: Warn) -> list[Item]:
    from cepletter.sources.feeds import parse_document

    return parse_document(data, where=_where(source), base=base, source=source.name,
                          max_items=fetch.max_items, warn=warn)


def _read_file_feed(source: SourceSettings, path: Path, fetch: FetchSettings,
                    cache_dir: Path | None, warn: Warn) -> list[Item]:
    where = _where(source)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise SourceError(f"{where}: file not found", "Check the path in cepletter.toml (it is relative to the workspace).") from None
    except OSError as exc:
        raise SourceError(f"{where}: cannot read: {exc.strerror}") from None
    if path.is_dir():
        raise SourceError(f"{where}: is a folder, not a feed file",
                          'For a folder of Markdown notes add kind = "markdown" to the source.')
    key = str(path.resolve())
    cached = cache.load(cache_dir, key, source.name) if cache_dir is not None else None
    if cached is not None and cached.mtime_ns == stat.st_mtime_ns and cached.size == stat.st_size:
        return cached.items
    if stat.st_size > fetch.max_bytes:
        raise SourceError(f"{where}: larger than {fetch.max_bytes // (1024 * 1024)} MB",
                          "Raise [fetch] max_bytes if the feed is really that big.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{where}: cannot read: {exc.strerror}") from None
    digest = _sha256(data)
    # Touched but unchanged: no need to parse again.
    unchanged = cached is not None and cached.sha256 == digest
    items = cached.items if cached is not None and unchanged else _parse(data, source, None, fetch, warn)
    if cache_dir is not None:
        cache.save(cache_dir, cache.CacheEntry(location=key, items=items, saved=_now(),
                                               mtime_ns=stat.st_mtime_ns, size=stat.st_size, sha256=digest))
    return items


def _read_url_feed(source: SourceSettings, fetch: FetchSettings, cache_dir: Path | None,
                   warn: Warn) -> list[Item]:
    from cepletter.sources.fetch import fetch as http_get

    url = source.url or ""
    cached = cache.load(cache_dir, url, source.name) if cache_dir is not None else None
    try:
        response = http_get(
            url, timeout=fetch.timeout, max_bytes=fetch.max_bytes, max_redirects=fetch.max_redirects,
            etag=cached.etag if cached else None, last_modified=cached.last_modified if cached else None,
        )
    except SourceError as exc:
        if cached is None:
            raise SourceError(f"source {source.name!r}: {exc.message}", exc.hint) from None
        saved = cached.saved[:16].replace("T", " ") or "earlier"
        warn(f"source {source.name!r}: {exc.message}; using the {len(cached.items)} items saved {saved} UTC")
        return cached.items
    if response.status == 304 and cached is not None:
        return cached.items
    digest = _sha256(response.body)
    if cached is not None and cached.sha256 == digest:
        items = cached.items
    else:
        try:
            items = _parse(response.body, source, response.url, fetch, warn)
        except SourceError as exc:
            if cached is None:
                raise
            # A maintenance page instead of the feed: keep the last good items.
            warn(f"{exc.message}; using the {len(cached.items)} items saved earlier")
            return cached.items
    if cache_dir is not None:
        cache.save(cache_dir, cache.CacheEntry(location=url, items=items, saved=_now(), etag=response.etag,
                                               last_modified=response.last_modified, sha256=digest))
    return items
