"""The labelled corpus of messages for the contact-info rule (`contact_info_corpus.tsv`: label,
default region, text; the label is the kind of contact information the message holds, or none)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).with_name("contact_info_corpus.tsv")
HELD_OUT = Path(__file__).with_name("contact_info_heldout.tsv")
# The institution's own sites in the corpus: links there are never contact information.
ALLOWED_DOMAINS = ("learn.example.edu",)


@dataclass(frozen=True)
class Entry:
    """One labelled message."""

    label: str
    region: str
    text: str

    @property
    def contact(self) -> bool:
        """Whether it holds contact information."""
        return self.label != "none"


def load_corpus(path: Path = CORPUS) -> list[Entry]:
    """Every labelled message."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            label, region, text = line.split("\t")
            entries.append(Entry(label, region, text))
    return entries
