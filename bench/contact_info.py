"""The contact-info rule on the labelled messages of the tests (the corpus, and a second set
written apart from it): precision, recall, and the time the detector takes per message (target:
p99 at most 0.2 ms).

    python -m bench.contact_info [--repeat 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import percentile, print_table
from bridge.domain.contact_info import ContactInfoDetector
from tests.data.corpus import ALLOWED_DOMAINS, CORPUS, HELD_OUT, load_corpus


def measure(path: Path, repeat: int) -> list[object]:
    """One row of the table: a labelled set's size, precision, recall and times."""
    corpus = load_corpus(path)
    detectors: dict[str, ContactInfoDetector] = {}
    times: list[float] = []
    hits = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for n in range(repeat):
        for entry in corpus:
            if entry.region not in detectors:
                detectors[entry.region] = ContactInfoDetector(entry.region, ALLOWED_DOMAINS)
            detector = detectors[entry.region]
            started = time.perf_counter()
            found = bool(detector.find(entry.text))
            times.append((time.perf_counter() - started) * 1000)
            if n == 0:
                key = ("t" if found == entry.contact else "f") + ("p" if found else "n")
                hits[key] += 1
    precision = hits["tp"] / max(1, hits["tp"] + hits["fp"])
    recall = hits["tp"] / max(1, hits["tp"] + hits["fn"])
    return [
        path.name,
        len(corpus),
        sum(e.contact for e in corpus),
        f"{precision:.3f}",
        f"{recall:.3f}",
        f"{percentile(times, 50):.3f}",
        f"{percentile(times, 99):.3f}",
        f"{max(times):.3f}",
        f"{sum(times) / len(times):.3f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="passes over each set")
    args = parser.parse_args()
    print_table(
        [
            "set",
            "messages",
            "contact",
            "precision",
            "recall",
            "p50 ms",
            "p99 ms",
            "max ms",
            "mean ms",
        ],
        [measure(path, args.repeat) for path in (CORPUS, HELD_OUT)],
    )
    print("targets: precision ≥ 0.98, recall ≥ 0.95, p99 ≤ 0.2 ms")


if __name__ == "__main__":
    main()
