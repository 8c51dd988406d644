"""The contact-info rule's detector: phone numbers, e-mail addresses and social-media handles
or links in a message, including the usual disguises (spaced or dotted digits, "at" and "dot",
digits written as words).

Phone numbers are judged by libphonenumber's rules for the institution's region, so times,
dates, prices, percentages, course codes and room numbers (which are not valid numbers) don't
count; numbers that are valid phone numbers by shape but say what they are (an ISBN, a page, a
student id, an amount) don't either. Links are only contact information when they lead to a
messaging or social platform; links to the institution's own sites are never flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

Kind = Literal["phone", "email", "social"]
MIN_PHONE_DIGITS = 7

# Platform names (and their usual short forms) as people write them.
DEFAULT_PLATFORMS = (
    "whatsapp",
    "whats app",
    "telegram",
    "instagram",
    "insta",
    "snapchat",
    "snap",
    "discord",
    "facebook",
    "fb",
    "ig",
    "messenger",
    "tiktok",
    "signal",
    "wechat",
    "kik",
    "twitter",
    "skype",
    "the gram",
)
# Hosts whose links reach a person directly.
SOCIAL_HOSTS = (
    "wa.me",
    "whatsapp.com",
    "t.me",
    "telegram.me",
    "instagram.com",
    "instagr.am",
    "snapchat.com",
    "discord.gg",
    "discord.com",
    "discordapp.com",
    "facebook.com",
    "fb.com",
    "fb.me",
    "m.me",
    "tiktok.com",
    "signal.me",
    "twitter.com",
    "x.com",
    "skype.com",
)
_TLDS = (
    "com|net|org|edu|gov|info|biz|io|me|co|uk|ac|de|fr|es|it|nl|be|ch|at|ie|in|au|nz|ca|us|ng|"
    "za|ke|gh|br|mx|jp|cn|ru|pl|se|no|dk|fi|pt|gr|tr|ae|sg|my|ph|pk|bd|eu|live|email|mail|gg|"
    "ly|tv|am|app|link|page"
)
_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"']+|(?<![@\w.])(?:[a-z0-9-]+\.)+(?:" + _TLDS + r")\b"
    r"(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)
_AT = r"\s*(?:[\(\[\{<'\"]\s*(?:at|@)\s*[\)\]\}>'\"]|\s(?:at|AT|At)\s|@)\s*"
_DOT = r"\s*(?:[\(\[\{<'\"]\s*dot\s*[\)\]\}>'\"]|\s(?:dot|DOT|Dot)\s|\.)\s*"
# What makes an address a disguised one (a plain one is found as it is).
_DISGUISE = re.compile(r"\s(?:at|dot)\s|[\(\[\{<'\"]|\s[@.]|[@.]\s", re.IGNORECASE)
_DISGUISED_EMAIL = re.compile(
    r"\b[\w.+-]{2,64}" + _AT + r"[a-z0-9-]{2,30}(?:" + _DOT + r"[a-z0-9-]{2,20})*"
    r"(?:" + _DOT + r"(?:" + _TLDS + r"))\b",
    re.IGNORECASE,
)
_WORD_DIGITS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "nought": "0",
    "nil": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_REPEATS = {"double": 2, "triple": 3}
# Longest first, so "one" is read as one and not as "o" and "ne".
_DIGIT_NAMES = r"nought|zero|three|seven|eight|four|five|nine|one|two|six|nil|oh|o"
# A token of a spelt number: digits and digit names, also run together ("07nine11").
_DIGIT_WORD = r"(?:(?:" + _DIGIT_NAMES + r"|\d)+)"
_SPOKEN_NUMBER = re.compile(
    r"(?<![\w])(?:\+\s*)?(?:(?:double|triple)[\s-]+)?"
    + _DIGIT_WORD
    + r"(?:[\s,.-]+(?:(?:double|triple)[\s-]+)?"
    + _DIGIT_WORD
    + r"){1,}(?![\w])",
    re.IGNORECASE,
)
# Cheap gates: a run of seven digits or more (whatever separates them), or a digit's name.
_DIGIT_RUN = re.compile(r"[+(]?\d(?:[^\w\n]{0,3}\d)*")
_WORDS = re.compile(r"[a-z]+")
_SPOKEN_WORDS = frozenset(_DIGIT_NAMES.split("|")) - {"o"} | {"double", "triple"}
_GLUED = re.compile(r"\d(?:" + _DIGIT_NAMES + r")|(?:" + _DIGIT_NAMES + r")\d", re.IGNORECASE)
_ON_X = re.compile(r"\b(?:on|via)\s+x\b", re.IGNORECASE)
# How far from a platform's name its handle or invitation may start or end.
_BEFORE_PLATFORM, _AFTER_PLATFORM = 60, 80
_URL_HINT = re.compile(r"https?://|www\.|[a-z0-9-]\.[a-z]{2,}\b", re.IGNORECASE)
_NUMBER_WORD = re.compile(
    r"(?:\b|\d)(?:" + _DIGIT_NAMES + r")(?:\d|[\s,.-]+(?:\d|(?:" + _DIGIT_NAMES + r"|double|"
    r"triple)\b))",
    re.IGNORECASE,
)
# Digits kept apart by single spaces, dots or dashes: "0 7 7 0 0 9 0 0 1 2 3".
_SPACED_DIGITS = re.compile(r"(?<![\w.])\+?\d{1,3}(?:[ .\-/]\d{1,3}){4,}(?![\w])")
# Words just before a number that say it is not a phone number.
_NOT_A_PHONE_BEFORE = re.compile(
    r"(?:isbn(?:-1[03])?|issn|doi|pages?|pp?\.|chapters?|ch\.|sections?|§|exercises?|"
    r"questions?|q\.|id|ids|no\.|#|ref|reference|ticket|order|invoice|submission|assignment|"
    r"receipt|account|acct|sort\s+code|rooms?|version|v|£|\$|€|¥|₹|usd|gbp|eur|inr|mod|modulo|"
    r"sequence|compute|calculate|digits|"
    r"(?:student|candidate|registration|matric(?:ulation)?|case|serial|policy|personal|ucas|"
    r"membership|library|staff|employee|exam|seat|ticket|order|account|reference|passport|"
    r"roll|enrol(?:l?ment)?|application|card|tracking|booking)"
    r"\s+(?:no\.?|num(?:ber)?|id|code)|"
    # Compound words naming a number (German and Dutch), other than a phone's.
    r"\b(?!telefon|handy|mobil|ruf|telefoon)\w{3,}nummer)"
    r"(?:\s+(?:is|was|=|ist|est))?[\s:#.\-]*$",
    re.IGNORECASE,
)
# Words before a number that say it is a phone number.
_PHONE_CONTEXT = re.compile(
    r"\b(?:call|ring|text|txt|phone|mobile|mob|cell|tel|telephone|number|no|num|whatsapp|"
    r"contact|reach|sms|landline)\b[^\d]{0,20}$",
    re.IGNORECASE,
)
_HANDLE = r"@?[a-z0-9](?:[a-z0-9_.]{1,28}[a-z0-9_])?(?:#\d{4})?"
# Words that follow a platform name without being a handle.
_NOT_HANDLES = frozenset(
    (  # noqa: SIM905 (a word list reads better as words)
        "a an the for is it its my me us our your their this that group groups chat chats link "
        "links page pages channel channels server servers account accounts story stories post "
        "posts call calls video videos message messages and or but so to of on in at by with "
        "from about app thing stuff too as was were be been policy discussion forum module "
        "course class lecture here there instead please thanks"
    ).split()
)


_GROUP_MENTIONS = frozenset({"@everyone", "@here", "@channel", "@room", "@all"})


@dataclass(frozen=True)
class RuleSettings:
    """An institution's own contact-info settings; None keeps the bridge's default."""

    mode: str | None = None  # off, flag, warn or block
    region: str | None = None  # where phone numbers without a country code are read


@dataclass(frozen=True)
class ContactMatch:
    """One piece of contact information found in a text."""

    kind: Kind
    start: int
    end: int
    text: str


class ContactInfoDetector:
    """Finds contact information in messages, for one institution's region and sites."""

    def __init__(
        self,
        region: str = "GB",
        allowed_domains: tuple[str, ...] = (),
        platforms: tuple[str, ...] = DEFAULT_PLATFORMS,
    ) -> None:
        self._region = region.upper()
        self._allowed = tuple(d.lower().lstrip(".") for d in allowed_domains)
        names = "|".join(
            re.escape(p).replace(r"\ ", r"\s?") for p in sorted(platforms, key=len, reverse=True)
        )
        platform = rf"\b(?:{names})\b"
        self._invitation = re.compile(
            rf"\b(?:add|dm|message|msg|text|hmu|follow|find|reach|contact|ping|chat\s+to|talk\s+to)"
            rf"\s+me\s+(?:up\s+)?(?:@[\w.]+\s+)?(?:on|via|over|at|through|in)\s+{platform}"
            rf"|{platform}\s+me\b",
            re.IGNORECASE,
        )
        self._handle = re.compile(
            rf"{platform}(?P<between>(?:[\s?!.,]*\b(?:my|i'?m|im|username|user\s?name|name|"
            rf"handle|id|tag|is|at)\b)*\s*(?::|=|\s[-–]\s)?\s*)(?P<handle>{_HANDLE})",
            re.IGNORECASE,
        )
        self._handle_first = re.compile(
            rf"(?P<handle>@[a-z0-9_.]{{3,30}})\s+(?:on|at|via)\s+{platform}", re.IGNORECASE
        )
        # An @handle shortly after a platform's name, whatever words come between ("telegram
        # pe aa ja, username @rahul"); X only this way, as "x" is a common word.
        self._platform_words = {re.split(r"\s", p.lower())[-1] for p in platforms}
        self._handle_near = re.compile(
            rf"(?:{platform}|\b(?:on|via)\s+x\b)[^@\n]{{0,40}}?(?P<handle>@[a-z0-9_.]{{3,30}})",
            re.IGNORECASE,
        )

    def find(self, text: str) -> list[ContactMatch]:
        """Every piece of contact information in `text`, in order."""
        found: list[ContactMatch] = []
        # What is found (and sites' addresses) is blanked out of `work`, so no pass sees it
        # again: an e-mail's digits are no phone number.
        work = text

        def blank(start: int, end: int) -> None:
            nonlocal work
            work = work[:start] + " " * (end - start) + work[end:]

        def take(kind: Kind, start: int, end: int) -> None:
            found.append(ContactMatch(kind, start, end, text[start:end]))
            blank(start, end)

        lowered = text.lower()
        words = set(_WORDS.findall(lowered))
        if "@" in text:
            for match in _EMAIL.finditer(work):
                take("email", match.start(), match.end())
        if ("at" in words or "@" in text) and ("dot" in words or "." in text):
            for match in _DISGUISED_EMAIL.finditer(work):
                if _DISGUISE.search(match.group(0)):
                    take("email", match.start(), match.end())
        if _URL_HINT.search(work):
            for match in _URL.finditer(work):
                link = match.group(0).rstrip(".,;:!?)")
                end = match.start() + len(link)
                if self._social_link(link):
                    take("social", match.start(), end)
                else:  # a site's address, whatever digits it holds, is no phone number
                    blank(match.start(), end)
        for start, end in self._platform_windows(work, words):
            for pattern in (self._handle, self._handle_first, self._handle_near, self._invitation):
                for match in pattern.finditer(work, start, end):
                    if self._is_contact(pattern, match, work):
                        take("social", match.start(), match.end())
        for start, end in self._phones(work, words):
            take("phone", start, end)
        return sorted(found, key=lambda m: m.start)

    def _platform_windows(self, work: str, words: set[str]) -> list[tuple[int, int]]:
        """The stretches of text around each mention of a platform (`words`: the text's
        lowercased words), where its handles and invitations are looked for."""
        named = words & self._platform_words
        if not named and "x" not in words:
            return []
        spots = [
            m.span()
            for w in named
            for m in re.finditer(rf"\b{re.escape(w)}\b", work, re.IGNORECASE)
        ]
        if "x" in words:
            spots += [m.span() for m in _ON_X.finditer(work)]
        windows: list[tuple[int, int]] = []
        for start, end in sorted(spots):
            start, end = max(0, start - _BEFORE_PLATFORM), min(len(work), end + _AFTER_PLATFORM)
            if windows and start <= windows[-1][1]:
                windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
            else:
                windows.append((start, end))
        return windows

    def _is_contact(self, pattern: re.Pattern[str], match: re.Match[str], work: str) -> bool:
        if pattern is self._handle:
            mine = work[max(0, match.start() - 4) : match.start()].lower().endswith("my ")
            return self._looks_like_handle(match.group("handle"), match.group("between"), mine)
        if pattern is self._handle_near:
            return match.group("handle").lower() not in _GROUP_MENTIONS
        return True

    def _social_link(self, link: str) -> bool:
        host = re.sub(r"^(?:https?://)?(?:www\.)?", "", link, flags=re.IGNORECASE)
        host = host.split("/", 1)[0].split(":", 1)[0].lower()
        if any(host == d or host.endswith("." + d) for d in self._allowed):
            return False
        return any(host == h or host.endswith("." + h) for h in SOCIAL_HOSTS)

    @staticmethod
    def _looks_like_handle(handle: str, between: str, mine: bool) -> bool:
        """Whether the word after a platform's name is someone's handle there: marked as one
        (@, a Discord #tag), introduced as one ("insta: sam", "username sam", "my snap is
        sam"), or shaped like one (digits, dots or underscores in a name)."""
        word = handle.lstrip("@").split("#", 1)[0]
        if word.lower() in _NOT_HANDLES or len(word) < 3 or word.replace(".", "").isdigit():
            return False
        if handle.startswith("@") or "#" in handle:
            return True
        if re.search(r"[:=\-–]|\b(?:username|user\s?name|handle|id)\b", between, re.IGNORECASE):
            return True
        if mine and re.search(r"\bis\b", between, re.IGNORECASE):
            return True
        return bool(re.search(r"[0-9_.]", word))

    def _phones(self, work: str, words: set[str]) -> list[tuple[int, int]]:
        """Where phone numbers are in `work` (`words`: its lowercased words)."""
        runs = [m.span() for m in _DIGIT_RUN.finditer(work)]
        spoken = bool(words & _SPOKEN_WORDS or _GLUED.search(work)) and bool(
            _NUMBER_WORD.search(work)
        )
        digits = sum(c.isdigit() for c in work) >= MIN_PHONE_DIGITS
        spans: list[tuple[int, int]] = []
        # libphonenumber reads only around the runs of digits, not the whole text.
        for start, end in _windows(work, runs):
            window = work[start:end]
            for match in PhoneNumberMatcher(window, self._region, leniency=Leniency.POSSIBLE):
                at = start + match.start
                if self._phone_like(
                    match.raw_string, work[:at], lenient=_written_as_one(match.raw_string)
                ):
                    spans.append((at, start + match.end))
        patterns = ((_SPACED_DIGITS,) if digits else ()) + ((_SPOKEN_NUMBER,) if spoken else ())
        for pattern in patterns:
            for match in pattern.finditer(work):
                if any(s < match.end() and match.start() < e for s, e in spans):
                    continue  # overlaps a number found already
                spelt_digits = _digits_of(match.group(0))
                # Spelt digits, or digits spaced out one by one, hide a number; many groups of
                # several digits are a list (a sequence, scores) unless they make a valid one.
                spelt = pattern is _SPOKEN_NUMBER and re.search(r"[a-z]", match.group(0), re.I)
                lenient = bool(spelt) or _written_as_one(match.group(0))
                if spelt_digits is not None and self._phone_like(
                    spelt_digits, work[: match.start()], lenient=lenient
                ):
                    spans.append((match.start(), match.end()))
        return [s for s in sorted(spans) if not _says_it_is_something_else(work, *s)]

    def _phone_like(self, raw: str, before: str, lenient: bool = True) -> bool:
        """Whether a number is a phone number: valid by the region's rules; or of a possible
        length and written as one (with its country code or trunk prefix), or said to be
        one. (Reserved ranges, such as the UK's fictional 07700 900xxx, are possible but not
        valid: written like that they are still someone's number to the reader.)"""
        digits = re.sub(r"[^\d+]", "", raw)
        if not MIN_PHONE_DIGITS <= len(digits.lstrip("+")) <= 15:
            return False
        try:
            number = phonenumbers.parse(digits, self._region)
        except phonenumbers.NumberParseException:
            return False
        if phonenumbers.is_valid_number(number):
            return True
        if not lenient or not phonenumbers.is_possible_number(number):
            return False
        dialled = digits.startswith("+") or (digits.startswith("0") and len(digits) >= 10)
        return dialled or _PHONE_CONTEXT.search(before[-40:]) is not None


def _windows(text: str, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Stretches of text around the runs holding seven digits or more (a few characters on
    each side, for a "+" or a bracket), overlapping ones merged."""
    windows: list[tuple[int, int]] = []
    length = len(text)
    for start, end in runs:
        if sum(c.isdigit() for c in text[start:end]) < MIN_PHONE_DIGITS:
            continue
        start, end = max(0, start - 3), min(length, end + 3)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def _written_as_one(raw: str) -> bool:
    """Whether digits are grouped as a phone number is (at most four groups, or spaced out one
    by one), not as a list of numbers."""
    groups = re.findall(r"\d+", raw)
    return len(groups) <= 4 or all(len(group) == 1 for group in groups)


def _digits_of(spoken: str) -> str | None:
    """The digits a run of digits and number words spells ("double oh" is "00")."""
    out = "+" if spoken.lstrip().startswith("+") else ""
    repeat = 1
    words = re.findall(r"double|triple|" + _DIGIT_NAMES + r"|\d|[a-z]+", spoken.lower())
    for word in words:
        if word in _REPEATS:
            repeat = _REPEATS[word]
            continue
        digit = word if word.isdigit() else _WORD_DIGITS.get(word)
        if digit is None:
            return None
        out += digit * repeat
        repeat = 1
    return out


def _says_it_is_something_else(text: str, start: int, end: int) -> bool:
    """Whether the words around a number say it isn't a phone number (an ISBN, a page…)."""
    before = text[max(0, start - 24) : start]
    if _NOT_A_PHONE_BEFORE.search(before):
        return True
    digits = re.sub(r"\D", "", text[start:end])
    if len(digits) == 13 and digits[:3] in ("978", "979") and _isbn13(digits):
        return True
    if start >= 2 and text[start - 1] in "./-" and text[start - 2].isalnum():
        return True  # part of a longer token: a decimal, a path, a code such as CN-5521-0093
    return bool(re.match(r"\s*(?:%|°|[x×]\s*\d)", text[end : end + 4]))


def _isbn13(digits: str) -> bool:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return total % 10 == 0
