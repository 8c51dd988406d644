"""The contact-info rule as each institution sets it: off, flag (moderators get a report), warn
(the sender is told) or block (the message is refused, or removed from Matrix).

The institution is the one through which the pair may talk: the policy's answer carries its
settings, and its region is the default region for phone numbers. Detectors are kept per region.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.domain.contact_info import ContactInfoDetector, ContactMatch, RuleSettings

_KIND_WORDS = {
    "phone": "a phone number",
    "email": "an e-mail address",
    "social": "a social-media contact",
}


@dataclass(frozen=True)
class RuleHit:
    """Contact information found in a text, and what the institution's rule says to do."""

    mode: str  # flag, warn or block
    matches: tuple[ContactMatch, ...]

    @property
    def what(self) -> str:
        """What was found, in words ("a phone number and an e-mail address")."""
        kinds = list(dict.fromkeys(_KIND_WORDS[m.kind] for m in self.matches))
        return kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]


def guideline_notice(hit: RuleHit, blocked: bool) -> str:
    """What the bot tells the sender in Matrix."""
    if blocked:
        return (
            f"This message was removed and not delivered: it contains {hit.what}. Please don't "
            "share personal contact information here; keep messages academic and professional."
        )
    return (
        f"Your message contains {hit.what}. Please don't share personal contact information "
        "here; keep messages academic and professional."
    )


class ContactInfoRule:
    """Checks texts against the rule of the institution a conversation belongs to."""

    def __init__(
        self,
        default_mode: str,
        allowed_domains: tuple[str, ...],
        platforms: tuple[str, ...],
        default_region: str = "GB",
    ) -> None:
        self._default = default_mode
        self._allowed = allowed_domains
        self._platforms = platforms
        self._region = default_region
        self._detectors: dict[str, ContactInfoDetector] = {}

    def check(self, settings: RuleSettings | None, text: str) -> RuleHit | None:
        """What the rule says about `text` under an institution's `settings` (None: the
        bridge's defaults), None when nothing is found or the rule is off."""
        mode = (settings and settings.mode) or self._default
        region = (settings and settings.region) or self._region
        if mode == "off" or not text:
            return None
        matches = self._detector(region).find(text)
        return RuleHit(mode, tuple(matches)) if matches else None

    def _detector(self, region: str) -> ContactInfoDetector:
        detector = self._detectors.get(region)
        if detector is None:
            detector = ContactInfoDetector(region, self._allowed, self._platforms)
            self._detectors[region] = detector
        return detector
