"""Profile a command in every thread, not only the main one (cProfile alone sees one thread).

    python bench/profile_threads.py [--top 30] [--sort tottime] -m cepletter -C WS send --yes

Each thread gets its own profiler; at exit the statistics of all threads
are merged and the top functions printed to stderr. Use it to find where a
benchmark that misses its target spends its time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import runpy
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_original_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile()
    with _lock:
        _profiles.append(profile)
    profile.enable()
    try:
        _original_run(self)
    finally:
        profile.disable()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--out", type=Path, help="also write the merged statistics here")
    parser.add_argument("-m", dest="module", required=True)
    args, rest = parser.parse_known_args()
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    main_profile = cProfile.Profile()
    sys.argv = [args.module, *rest]
    code = 0
    main_profile.enable()
    try:
        runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        main_profile.disable()
    stats: Any = pstats.Stats(main_profile, stream=sys.stderr)
    for profile in _profiles:
        stats.add(profile)
    if args.out:
        stats.dump_stats(str(args.out))
    stats.sort_stats(args.sort).print_stats(args.top)
    return code


if __name__ == "__main__":
    sys.exit(main())
