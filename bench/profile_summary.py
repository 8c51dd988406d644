"""Where a sampled profile's time went, by layer: a table from py-spy's raw (collapsed) output.

    py-spy record --pid PID --format raw --output profile.txt --duration 60
    python -m bench.profile_summary profile.txt [--top 15]

Each sample is a stack (on the loop's thread, from the event loop's callback runner inwards);
samples of a waiting thread are left out. *inclusive* is the share of samples with any frame of a
layer on the stack (so they add up to more than 100%); *innermost* gives each sample to the layer
of its innermost frame that belongs to one, so those add up to 100%. Then the functions of the
bridge's own code that samples were in, innermost first.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from bench.common import print_table

# (layer, file-path pattern); the first that matches names a frame's layer.
LAYERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("database: SQLAlchemy", re.compile(r"^sqlalchemy/")),
    ("database: driver", re.compile(r"^(aiosqlite|asyncpg|psycopg|sqlite3)/")),
    ("matrix-nio", re.compile(r"^(nio|jsonschema|jsonschema_specifications|referencing)/")),
    ("aiohttp", re.compile(r"^(aiohttp|multidict|yarl|aiosignal|frozenlist)/")),
    ("bridge", re.compile(r"^bridge/")),
    ("benchmark", re.compile(r"^bench/")),
    ("asyncio and threads", re.compile(r"^(asyncio|concurrent|threading|selectors)/")),
    ("json", re.compile(r"^json/")),
)
# Innermost frames that mean the thread was waiting, not working (py-spy's own idle detection
# misses some of these when it samples without stopping the process).
IDLE = re.compile(
    r"^(EpollSelector\.select \(selectors\.py"
    r"|_worker \(concurrent/futures/thread\.py"
    r"|_connection_worker_thread \(aiosqlite/core\.py:59\)"
    r"|Condition\.wait \(threading\.py"
    r"|Thread\._wait_for_tstate_lock)"
)
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+):\d+\)$")


def layer_of(file: str) -> str | None:
    """The layer a source file belongs to, if any."""
    for name, pattern in LAYERS:
        if pattern.search(file):
            return name
    return None


def summarise(path: Path) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """(samples, inclusive per layer, innermost per layer, bridge functions innermost)."""
    total = 0
    inclusive: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if IDLE.match(stack.rsplit(";", 1)[-1]):
            continue
        frames = [m for m in map(_FRAME.match, stack.split(";")) if m]
        # What runs the event loop (the script's own start-up included) is not a layer's work.
        loop_runs = [n for n, m in enumerate(frames) if m["function"] == "Handle._run"]
        if loop_runs:
            frames = frames[loop_runs[-1] + 1 :]
        layers = [layer_of(m["file"]) for m in frames]
        total += count
        for layer in set(layers) - {None}:
            inclusive[layer] += count  # type: ignore[index]
        inner = next((layer for layer in reversed(layers) if layer), "other")
        innermost[inner] += count
        own = next((m for m in reversed(frames) if m["file"].startswith("bridge/")), None)
        if own is not None:
            functions[f"{own['function']} ({own['file']})"] += count
    return total, inclusive, innermost, functions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    total, inclusive, innermost, functions = summarise(args.profile)
    print(f"{total} samples (a thread waiting is not counted)")
    names = [name for name, _ in LAYERS] + ["other"]
    print_table(
        ["layer", "inclusive", "innermost"],
        [
            [name, f"{100 * inclusive[name] / total:.1f}%", f"{100 * innermost[name] / total:.1f}%"]
            for name in names
            if inclusive[name] or innermost[name]
        ],
    )
    print(f"\nthe bridge's functions, innermost bridge frame (top {args.top})")
    print_table(
        ["function", "share"],
        [[name, f"{100 * n / total:.1f}%"] for name, n in functions.most_common(args.top)],
    )


if __name__ == "__main__":
    main()
