"""The on-disk cache of parsed sources, under the workspace's cache folder.

One JSON file per source location holds the sanitised Items together with what
identifies the document they came from (file size and mtime, or the HTTP
ETag/Last-Modified and a hash of the body). An unchanged source is then read
from here without parsing, and a web feed that is down still gives its last
items.
"""

from __future__ import annotations

import contextlib
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cepletter import __version__, dates
from cepletter.fsutil import atomic_write_text
from cepletter.sources.items import Item

# Bumped whenever parsing or sanitising changes what an Item holds.
CACHE_FORMAT = 3


@dataclass
class CacheEntry:
    location: str
    items: list[Item] = field(default_factory=list)
    saved: str = ""  # ISO time of the fetch or read
    etag: str | None = None
    last_modified: str | None = None
    mtime_ns: int | None = None
    size: int | None = None
    sha256: str | None = None


def cache_file(cache_dir: Path, location: str) -> Path:
    # A readable name plus a checksum; the entry itself records its location, so a
    # clash is only a cache miss. (zlib rather than hashlib: hashlib loads OpenSSL,
    # which costs more start-up time than reading the whole cached feed.)
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", location.rstrip("/").rsplit("/", 1)[-1])[-40:].strip("-.")
    return cache_dir / "sources" / f"{tail or 'feed'}-{zlib.crc32(location.encode('utf-8')):08x}.json"


def _item_dict(item: Item) -> dict[str, Any]:
    # Not dataclasses.asdict: its deep copies cost more than the whole parse.
    # The source name is left out: the reader sets it (one file may serve two sources).
    return {
        "id": item.id, "title": item.title, "link": item.link,
        "date": item.date.isoformat() if item.date else None,
        "summary": item.summary, "categories": item.categories, "image": item.image,
        "author": item.author,
    }


def _item(data: dict[str, Any], source: str) -> Item:
    when = data.get("date")
    return Item(
        id=data["id"], title=data["title"], link=data["link"],
        date=dates.parse_iso_datetime(when) if when else None, source=source,
        summary=data.get("summary", ""), categories=list(data.get("categories") or []),
        image=data.get("image"), author=data.get("author"),
    )


def load(cache_dir: Path, location: str, source: str) -> CacheEntry | None:
    """The cached entry for ``location``, or None (a damaged cache is just a miss)."""
    path = cache_file(cache_dir, location)
    try:
        data = json.loads(path.read_bytes())
        if data.get("format") != CACHE_FORMAT or data.get("version") != __version__:
            return None
        if data.get("location") != location:
            return None
        items = [_item(d, source) for d in data["items"]]
        return CacheEntry(
            location=location, items=items, saved=data.get("saved", ""),
            etag=data.get("etag"), last_modified=data.get("last_modified"),
            mtime_ns=data.get("mtime_ns"), size=data.get("size"), sha256=data.get("sha256"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def save(cache_dir: Path, entry: CacheEntry) -> None:
    """Store ``entry``; a cache that cannot be written only costs speed next time."""
    data = {
        "format": CACHE_FORMAT,
        "version": __version__,
        "location": entry.location,
        "saved": entry.saved,
        "etag": entry.etag,
        "last_modified": entry.last_modified,
        "mtime_ns": entry.mtime_ns,
        "size": entry.size,
        "sha256": entry.sha256,
        "items": [_item_dict(i) for i in entry.items],
    }
    with contextlib.suppress(OSError):
        atomic_write_text(cache_file(cache_dir, entry.location),
                          json.dumps(data, ensure_ascii=False, separators=(",", ":")), fsync=False)
