"""The contact-info detector on the labelled corpus, and on the traps named in its rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.domain.contact_info import ContactInfoDetector
from tests.data.corpus import ALLOWED_DOMAINS, CORPUS, HELD_OUT, load_corpus


@pytest.mark.parametrize("path", [CORPUS, HELD_OUT], ids=["corpus", "held-out"])
def test_the_detector_holds_its_precision_and_recall_on_the_labelled_messages(path: Path) -> None:
    corpus = load_corpus(path)
    assert len(corpus) >= 200
    detectors: dict[str, ContactInfoDetector] = {}
    wrong: list[str] = []
    true_positive = false_positive = false_negative = 0
    for entry in corpus:
        if entry.region not in detectors:
            detectors[entry.region] = ContactInfoDetector(entry.region, ALLOWED_DOMAINS)
        detector = detectors[entry.region]
        found = detector.find(entry.text)
        if found and entry.contact:
            true_positive += 1
        elif found:
            false_positive += 1
            wrong.append(f"flagged: {entry.text} {[m.text for m in found]}")
        elif entry.contact:
            false_negative += 1
            wrong.append(f"missed ({entry.label}): {entry.text}")
    precision = true_positive / (true_positive + false_positive)
    recall = true_positive / (true_positive + false_negative)
    assert precision >= 0.98 and recall >= 0.95, "\n".join(wrong)


def test_the_labelled_corpus_is_large_and_varied() -> None:
    corpus = load_corpus()
    labels = [entry.label for entry in corpus]
    assert len(corpus) >= 300
    assert min(labels.count(kind) for kind in ("phone", "email", "social")) >= 30
    assert labels.count("none") >= len(corpus) / 2


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("ring me on 07911 123456", "phone"),
        ("+44 (0) 20 7946 0321", "phone"),
        ("o seven nine one one, one two three four five six", "phone"),
        ("0 7 9 1 1 1 2 3 4 5 6", "phone"),
        ("jo dot bloggs at gmail dot com", "email"),
        ("jo.bloggs@example.org", "email"),
        ("my insta is jo.bloggs", "social"),
        ("t.me/jobloggs", "social"),
    ],
)
def test_disguises_are_seen_through(text: str, kind: str) -> None:
    found = ContactInfoDetector("GB").find(text)
    assert [m.kind for m in found] == [kind], found
    assert found[0].text in text


@pytest.mark.parametrize(
    "text",
    [
        "see you at 14:30 on 03/12/2026",
        "the fee is £1,250.00 (about 12.5%)",
        "MATH 1010 and CS101 meet in Room 2.14",
        "ISBN 978-0-13-468599-1, pages 120-135, chapter 7.3",
        "my student id is 20231234",
        "https://learn.example.edu/course/view.php?id=10420193",
        "I saw the notice on Instagram",
    ],
)
def test_what_only_looks_like_contact_information_is_left_alone(text: str) -> None:
    assert ContactInfoDetector("GB", ("learn.example.edu",)).find(text) == []
