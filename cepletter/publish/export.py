"""Hand-off files: the HTML, the text, one .eml, an mbox of every message, a zip for upload.

html, txt and eml are the web version (no personal data, no placeholders);
the mbox holds the message each subscriber would get; the zip holds the HTML,
the text and any images the HTML takes from local files.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from cepletter.config import Settings
from cepletter.errors import DeliveryError
from cepletter.fsutil import atomic_file, atomic_write_bytes
from cepletter.message.build import MessageFactory
from cepletter.message.editions import make_factory
from cepletter.message.personal import PersonalIssue
from cepletter.message.subscribers import Invalid, ListCounts, read_suppressed, recipients

FORMATS = ("html", "txt", "eml", "mbox", "zip")


@dataclass
class ExportResult:
    path: Path | None
    size: int = 0
    messages: int = 0
    images: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)


def default_path(folder: Path, issue_id: str, fmt: str) -> Path:
    """``issues/<ID>/build/<ID>.<format>``."""
    return folder / "build" / f"{issue_id}.{fmt}"


def web_bytes(settings: Settings, rendered: PersonalIssue, fmt: str) -> bytes:
    """The html, txt or eml export as bytes."""
    if fmt == "eml":
        return MessageFactory(settings, rendered).build_web().data
    html, text = rendered.web()
    return (html if fmt == "html" else text).encode("utf-8")


def write_mbox(settings: Settings, rendered: PersonalIssue, path: Path) -> ExportResult:
    """Every subscriber's message (not the suppressed or invalid) in one mbox file, streamed."""
    factory = make_factory(settings, rendered)  # each subscriber's language edition
    suppressed = read_suppressed(settings.suppressed_path)
    result = ExportResult(path)
    counts = ListCounts()
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime()).encode("ascii")
    envelope = b"From " + factory.sender.encode("ascii", "replace") + b" " + stamp + b"\n"
    with atomic_file(path) as fh:
        for recipient in recipients(settings.path(settings.delivery.subscribers), suppressed, set(), counts, result.invalid):
            data = factory.build(recipient).data
            # No line of a message starts with "From " (the encoder writes =46rom), so
            # the message goes in as it is and mbox readers need no unquoting.
            fh.write(envelope)
            fh.write(data)
            fh.write(b"\n" if data.endswith(b"\n") else b"\n\n")
            result.messages += 1
        fh.flush()
        result.size = fh.tell()
    return result


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            for name, value in attrs:
                if name == "src" and value:
                    self.sources.append(value)


def local_images(html: str) -> list[str]:
    """The ``src`` of every image that is a relative path (no scheme, no host), once each."""
    parser = _Images()
    parser.feed(html)
    parser.close()
    seen: dict[str, None] = {}
    for src in parser.sources:
        parts = urlsplit(src)
        if not parts.scheme and not parts.netloc and parts.path and not src.startswith("/"):
            seen.setdefault(src, None)
    return list(seen)


# What an image file starts with, by extension: a file is packed only when its
# name and its content agree that it is an image.
_IMAGE_MAGIC: dict[str, tuple[bytes, ...]] = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".gif": (b"GIF87a", b"GIF89a"),
    ".webp": (b"RIFF",),
}
IMAGES_FOLDER = "images"


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a PNG, JPEG, GIF or WebP image, by its extension and its first bytes."""
    magic = _IMAGE_MAGIC.get(path.suffix.lower())
    if magic is None:
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    if path.suffix.lower() == ".webp" and head[8:12] != b"WEBP":
        return False
    return head.startswith(magic)


def _find_image(src: str, folders: list[Path]) -> Path | None:
    """The image ``src`` names, when it is an image file inside one of the images ``folders``.

    A template can name any path; only images from an images folder are packed,
    so a zip for a mailing service never carries subscribers.csv, cepletter.toml
    or anything else of the workspace's.
    """
    rel = unquote(urlsplit(src).path)
    for folder in folders:
        base = folder.resolve()
        for candidate in ((folder.parent / rel).resolve(), (base / rel).resolve()):
            if candidate.is_relative_to(base) and candidate.is_file() and is_image_file(candidate):
                return candidate
    return None


def write_zip(settings: Settings, rendered: PersonalIssue, folder: Path, path: Path) -> ExportResult:
    """newsletter.html, newsletter.txt and the local images at the paths the HTML names."""
    html, text = rendered.web()
    result = ExportResult(path)
    folders = [folder / IMAGES_FOLDER, settings.root / IMAGES_FOLDER]
    with atomic_file(path) as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("newsletter.html", html.encode("utf-8"))
            archive.writestr("newsletter.txt", text.encode("utf-8"))
            for src in local_images(html):
                name = PurePosixPath(unquote(urlsplit(src).path))
                found = _find_image(src, folders)
                if found is None or ".." in name.parts:
                    result.warnings.append(
                        f"image {src}: not a PNG, JPEG, GIF or WebP image in the issue's or the workspace's "
                        f"{IMAGES_FOLDER}/ folder; left out")
                    continue
                archive.write(found, name.as_posix())
                result.images.append(name.as_posix())
        fh.flush()
        result.size = fh.tell()
    return result


def export(
    settings: Settings, rendered: PersonalIssue, folder: Path, fmt: str, path: Path | None,
    write_stdout: Callable[[bytes], None] | None = None,
) -> ExportResult:
    """Write the export in ``fmt`` to ``path`` (default under build/), or to stdout when asked."""
    if fmt not in FORMATS:
        raise DeliveryError(f"unknown export format {fmt!r}", f"Use one of {', '.join(FORMATS)}.")
    if fmt in ("html", "txt", "eml"):
        data = web_bytes(settings, rendered, fmt)
        if write_stdout is not None:
            write_stdout(data)
            return ExportResult(None, len(data))
        target = path or default_path(folder, rendered.issue_id, fmt)
        _write(target, data)
        return ExportResult(target, len(data), messages=1 if fmt == "eml" else 0)
    target = path or default_path(folder, rendered.issue_id, fmt)
    try:
        if fmt == "mbox":
            return write_mbox(settings, rendered, target)
        return write_zip(settings, rendered, folder, target)
    except OSError as exc:
        raise DeliveryError(f"{target}: cannot write: {exc.strerror}", "Choose another place with -o PATH.") from None


def _write(target: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(target, data)
    except OSError as exc:
        raise DeliveryError(f"{target}: cannot write: {exc.strerror}", "Choose another place with -o PATH.") from None
