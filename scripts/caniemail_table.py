"""Regenerate cepletter/review/data/caniemail.json, the compact client-support table.

The source is the npm package ``caniemail`` (https://www.npmjs.com/package/caniemail,
MIT licence), which carries the caniemail.com support data as JSON.
A feature's page is https://www.caniemail.com/features/<slug>/. Fetch it
and run this script on the tarball:

    npm pack caniemail@latest          # writes caniemail-<version>.tgz
    python scripts/caniemail_table.py caniemail-<version>.tgz

For every caniemail feature it keeps only the clients the newsletter cares
about (Gmail, Outlook, Apple Mail, Yahoo, Samsung Email) and, for each, the
most recent test result: "y", "n", "a" (partial), "u" (unknown), followed by
the numbers of the notes that apply. The notes themselves are kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "cepletter" / "review" / "data" / "caniemail.json"

# (family, platform) in caniemail's data -> the name shown in the report.
CLIENTS: dict[str, tuple[str, str, str]] = {
    "gmail-web": ("gmail", "desktop-webmail", "Gmail (web)"),
    "gmail-ios": ("gmail", "ios", "Gmail iOS"),
    "gmail-android": ("gmail", "android", "Gmail Android"),
    "outlook-windows": ("outlook", "windows", "Outlook Windows"),
    "outlook-web": ("outlook", "outlook-com", "Outlook.com / web"),
    "apple-macos": ("apple-mail", "macos", "Apple Mail macOS"),
    "apple-ios": ("apple-mail", "ios", "Apple Mail iOS"),
    "yahoo-web": ("yahoo", "desktop-webmail", "Yahoo (web)"),
    "samsung": ("samsung-email", "android", "Samsung Email"),
}


def read_package(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(package.json, data/caniemail.json) from an npm tarball or an unpacked package folder."""
    if path.is_dir():
        return (json.loads((path / "package.json").read_text(encoding="utf-8")),
                json.loads((path / "data" / "caniemail.json").read_text(encoding="utf-8")))
    with tarfile.open(path) as tar:
        def member(name: str) -> dict[str, Any]:
            handle = tar.extractfile(f"package/{name}")
            if handle is None:
                raise SystemExit(f"{path}: no package/{name} inside")
            loaded: dict[str, Any] = json.loads(handle.read().decode("utf-8"))
            return loaded

        return member("package.json"), member("data/caniemail.json")


def latest(results: dict[str, str]) -> str:
    """The last-listed result: caniemail lists a platform's tests oldest first."""
    value = list(results.values())[-1]
    parts = value.split()
    code = parts[0] if parts else "u"
    notes = [p.lstrip("#") for p in parts[1:] if p.startswith("#")]
    return " ".join([code, *notes])


def compact(package: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for feature in data["data"]:
        support: dict[str, str] = {}
        notes: dict[str, str] = {}
        for key, (family, platform, _label) in CLIENTS.items():
            results = feature.get("stats", {}).get(family, {}).get(platform)
            if not results:
                continue
            value = latest(results)
            support[key] = value
            for number in value.split()[1:]:
                text = (feature.get("notes_by_num") or {}).get(number)
                if text:
                    notes[number] = text
        features[feature["slug"]] = {
            "title": feature["title"],
            "support": support,
            **({"notes": notes} if notes else {}),
        }
    return {
        "source": f"npm package caniemail {package['version']} (data from caniemail.com)",
        "package": package["name"],
        "version": package["version"],
        "licence": package.get("license", "unknown"),
        "homepage": "https://www.caniemail.com/",
        "data_updated": data.get("last_update_date"),
        "regenerate": "npm pack caniemail && python scripts/caniemail_table.py caniemail-<version>.tgz",
        "clients": {key: label for key, (_f, _p, label) in CLIENTS.items()},
        "features": features,
    }


def dumps(table: dict[str, Any]) -> str:
    """JSON with one line per feature: small, and a regeneration diffs line by line."""
    head = {key: value for key, value in table.items() if key != "features"}
    lines = [json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "features": {']
    rows = [f" {json.dumps(slug)}: {json.dumps(entry, ensure_ascii=False, separators=(',', ':'))}"
            for slug, entry in table["features"].items()]
    lines.append(",\n".join(rows))
    lines.append(" }\n}\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", type=Path, help="caniemail-<version>.tgz from `npm pack`, or its unpacked folder")
    parser.add_argument("-o", "--output", type=Path, default=OUT, help="where to write the table")
    args = parser.parse_args(argv)
    package, data = read_package(args.package)
    table = compact(package, data)
    text = dumps(table)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.output)
    print(f"{args.output}: {len(table['features'])} features, caniemail {table['version']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
