"""The contact-info rule on the labelled corpus of the tests: precision, recall, and the time
the detector takes per message (target: p99 at most 0.2 ms).

    python -m bench.contact_info [--repeat 20]
"""

from __future__ import annotations

import argparse
import time

from bench.common import percentile, print_table
from bridge.domain.contact_info import ContactInfoDetector
from tests.data.corpus import ALLOWED_DOMAINS, load_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="passes over the corpus")
    args = parser.parse_args()
    corpus = load_corpus()
    detectors: dict[str, ContactInfoDetector] = {}
    times: list[float] = []
    hits = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for n in range(args.repeat):
        for entry in corpus:
            detector = detectors.setdefault(
                entry.region, ContactInfoDetector(entry.region, ALLOWED_DOMAINS)
            )
            started = time.perf_counter()
            found = bool(detector.find(entry.text))
            times.append((time.perf_counter() - started) * 1000)
            if n == 0:
                key = ("t" if found == entry.contact else "f") + ("p" if found else "n")
                hits[key] += 1
    precision = hits["tp"] / max(1, hits["tp"] + hits["fp"])
    recall = hits["tp"] / max(1, hits["tp"] + hits["fn"])
    print_table(
        ["messages", "contact", "precision", "recall", "p50 ms", "p99 ms", "max ms", "mean ms"],
        [
            [
                len(corpus),
                sum(e.contact for e in corpus),
                f"{precision:.3f}",
                f"{recall:.3f}",
                f"{percentile(times, 50):.3f}",
                f"{percentile(times, 99):.3f}",
                f"{max(times):.3f}",
                f"{sum(times) / len(times):.3f}",
            ]
        ],
    )
    print("targets: precision ≥ 0.98, recall ≥ 0.95, p99 ≤ 0.2 ms")


if __name__ == "__main__":
    main()
