"""bench/RESULTS.md: the machine, every figure as median [min–max], every target with PASS/FAIL."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import Section, Summary, Target
from bench.peers import Peers

PACKAGES = ("click", "rich", "jinja2", "premailer", "cssutils", "lxml", "feedparser", "nh3", "aiosmtpd")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def num(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def spread(s: Summary) -> str:
    return f"{num(s.median)} [{num(s.low)}–{num(s.high)}]"


def _target_value(t: Target) -> str:
    s = t.summary()
    unit = "×" if t.unit == "×" else f" {t.unit}".rstrip()
    return f"{num(s.median)}{unit} [{num(s.low)}–{num(s.high)}]"


def _target_goal(t: Target) -> str:
    unit = "×" if t.unit == "×" else f" {t.unit}"
    return f"{'≥' if t.op == '>=' else '≤'} {num(t.threshold)}{unit}"


def _verdict(t: Target, bold: bool = True) -> str:
    if t.informational:
        return f"for reference: {t.note}"
    if t.passed:
        return "PASS"
    return "**FAIL**" if bold else "FAIL"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def machine(peers: Peers, load_before: str) -> list[str]:
    import cepletter

    versions = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    peer_versions = ", ".join(f"{k} {v}" for k, v in sorted(peers.versions.items())) or "none found"
    return [
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores; {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({sys.implementation.name}); cepletter {cepletter.__version__}",
        f"- Packages: {versions}",
        f"- Peers ({peers.where}): {peer_versions}",
        f"- Load average (1 / 5 / 15 min) before the run: {load_before}; after: {load_average()} "
        f"(on a machine busy with other work, absolute figures drop and spreads widen; ratios hold better)",
    ]


def target_rows(sections: list[Section], informational: bool = False) -> list[str]:
    """The targets (or, with ``informational``, the comparisons that explain them)."""
    head = "| comparison | measured, median [min–max] | for reference | note |" if informational else \
        "| target | measured, median [min–max] | goal | result |"
    rows = [head, "|---|---:|---:|---|"]
    for section in sections:
        if section.error and not informational:
            rows.append(f"| {section.title} | not measured | | **ERROR** |")
            continue
        for t in section.targets:
            if t.informational != informational:
                continue
            if not t.samples:
                rows.append(f"| {t.name} | no samples | {_target_goal(t)} | **ERROR** |")
                continue
            verdict = t.note if informational else _verdict(t)
            rows.append(f"| {t.name} | {_target_value(t)} | {_target_goal(t)} | {verdict} |")
    return rows if len(rows) > 2 else []


def render(
    sections: list[Section], peers: Peers, scale: str, rounds: int, seconds: float, command: str, load_before: str
) -> str:
    lines = [
        "# cepletter benchmark results",
        "",
        f"Written by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"(scale `{scale}`, {rounds} round{'s' if rounds != 1 else ''}, {seconds / 60:.1f} min).",
        "",
        "Every figure is the median [min–max] over the rounds; every ratio is taken between two figures "
        "of the same round and quoted as the median [min–max] of those per-round ratios. Absolute times "
        "depend on the machine; the ratios are what to compare. Contenders run in an order rotated each "
        "round; every process is timed whole (start-up included) unless it says *in process*.",
        "",
        "## Machine",
        "",
        *machine(peers, load_before),
        "",
        "## Targets",
        "",
        *target_rows(sections),
        "",
    ]
    context = target_rows(sections, informational=True)
    if context:
        lines += ["Comparisons that explain the targets (no goal of their own):", "", *context, ""]
    if scale != "full":
        lines += [f"*Scale `{scale}` uses smaller inputs than the targets are set for; run "
                  "`python bench/run.py` for the figures to quote.*", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.error:
            lines += [f"Not measured: {section.error}", ""]
            continue
        lines += ["| measure | median [min–max] | unit |", "|---|---:|---|"]
        for fig in section.figures:
            if fig.samples and fig.listed:
                lines.append(f"| {fig.name} | {spread(fig.summary())} | {fig.unit} |")
        for t in section.targets:
            if t.samples:
                lines.append(f"| **{t.name}** | {_target_value(t)} (goal {_target_goal(t)}) | "
                             f"{_verdict(t, bold=False)} |")
        lines.append("")
        if section.tables:
            lines += [*section.tables, ""]
        for note in section.notes:
            lines += [f"- {note}"]
        lines += ["", f"*{section.seconds:.0f} s.*", ""]
    return "\n".join(lines).rstrip() + "\n"
