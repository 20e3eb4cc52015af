"""TEMPORARY stand-in for the logs helper's scrubber (never committed)."""
from __future__ import annotations
import re
from typing import Any

REDACTED = "[REDACTED]"
_KEYS = re.compile(r"pass|secret|token|auth|cookie|session|api[-_]?key|card|ssn|credential", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_BEARER = re.compile(r"(?i)bearer\s+[\w.~+/=-]+")
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
_TOKEN = re.compile(r"\b(?:sk|pk|ghp|xox[abp])[-_][\w-]{10,}\b")


def is_sensitive_key(key: Any) -> bool:
    return isinstance(key, str) and bool(_KEYS.search(key))


class Scrubber:
    def scrub(self, value: Any, *, emails: bool | None = None) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value, emails=emails)
        if isinstance(value, dict):
            return {k: (REDACTED if is_sensitive_key(k) else self.scrub(v, emails=emails)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v, emails=emails) for v in value)
        return value

    def scrub_text(self, text: str, *, emails: bool | None = None) -> str:
        text = _BEARER.sub(REDACTED, text)
        text = _TOKEN.sub(REDACTED, text)
        text = _CARD.sub(REDACTED, text)
        if not emails:
            text = _EMAIL.sub(REDACTED, text)
        return text


_active = Scrubber()


def active() -> Scrubber:
    return _active


def scrub(value: Any) -> Any:
    return _active.scrub(value)


def scrub_text(text: str) -> str:
    return _active.scrub_text(text)
