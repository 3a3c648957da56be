"""Parsing and validation of topic patterns in the three dialects (AMQP, MQTT, NATS).

This is the readable statement of the rules and the source of PatternError messages; the
bulk tokenizer in kernels/topic_parse.py applies the same rules to whole tables at once.
A parsed pattern is a list of word tokens (literal bytes, :data:`STAR` or :data:`HASH`) in
AMQP terms: ``*`` is exactly one word, ``#`` zero or more. MQTT's ``+``/``#`` and NATS's
``*``/``>`` translate onto those (``>`` is one or more words, i.e. ``*`` then ``#``).
"""

from __future__ import annotations

from typing import NamedTuple

from ._errors import PatternError

STAR = -2
HASH = -3

DIALECTS = ("amqp", "mqtt", "nats")
SEPARATOR = {"amqp": b".", "mqtt": b"/", "nats": b"."}

_NATS_SPACE = frozenset(b" \t\n\r\f")


class Parsed(NamedTuple):
    """One binding pattern after validation."""

    tokens: tuple        # literal bytes, STAR or HASH
    no_dollar: bool      # MQTT: never matches a topic that starts with '$'
    share: bytes | None  # MQTT: the share name of a '$share/{name}/{filter}' subscription


def as_bytes(pattern, dialect: str) -> bytes:
    if isinstance(pattern, str):
        try:
            return pattern.encode("utf-8")
        except UnicodeEncodeError:
            raise PatternError(pattern, dialect, "is not encodable as UTF-8") from None
    if isinstance(pattern, (bytes, bytearray, memoryview)):
        return bytes(pattern)
    raise PatternError(pattern, dialect, f"must be str or bytes, got {type(pattern).__name__}")


def parse(pattern, dialect: str, max_hash_wildcards: int | None = None) -> Parsed:
    """Validate one binding pattern and split it into tokens.

    Raises PatternError naming the pattern, the dialect and the rule it breaks.
    """
    p = as_bytes(pattern, dialect)
    if dialect == "amqp":
        return _parse_amqp(p, max_hash_wildcards)
    if dialect == "mqtt":
        return _parse_mqtt(p)
    if dialect == "nats":
        return _parse_nats(p)
    raise ValueError(f"dialect must be one of {', '.join(map(repr, DIALECTS))}, got {dialect!r}")


def _parse_amqp(p: bytes, max_hash: int | None) -> Parsed:
    try:
        p.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PatternError(p, "amqp", f"binding keys must be UTF-8 (bad byte at {exc.start})") from None
    if len(p) > 255:
        raise PatternError(p, "amqp", f"binding keys are at most 255 bytes (a shortstr), got {len(p)}")
    words = [] if p == b"" else p.split(b".")
    tokens = tuple(STAR if w == b"*" else HASH if w == b"#" else w for w in words)
    if max_hash is not None and tokens.count(HASH) > max_hash:
        raise PatternError(p, "amqp", f"at most {max_hash} '#' words per binding "
                                      f"(RabbitMQ >= 4.3.5), got {tokens.count(HASH)}")
    return Parsed(tokens, False, None)


def mqtt_string_problem(s: bytes) -> str | None:
    """Why mosquitto would refuse ``s`` as a topic or filter string, or None if it accepts it."""
    try:
        text = s.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not valid UTF-8 (bad byte at {exc.start})"
    for k, ch in enumerate(text):
        c = ord(ch)
        if c == 0:
            return "contains U+0000"
        if c <= 0x1F or 0x7F <= c <= 0x9F:
            return f"contains the control character U+{c:04X} (refused by mosquitto)"
        if 0xFDD0 <= c <= 0xFDEF or (c & 0xFFFF) >= 0xFFFE:
            return f"contains the non-character U+{c:04X} (refused by mosquitto)"
    return None


def _parse_mqtt(p: bytes) -> Parsed:
    share = None
    filt = p
    if p.startswith(b"$share/"):
        name, sep, filt = p[len(b"$share/"):].partition(b"/")
        if not name:
            raise PatternError(p, "mqtt", "a shared subscription needs a non-empty share name")
        if b"+" in name or b"#" in name:
            raise PatternError(p, "mqtt", "a share name must not contain '+' or '#'")
        if not sep or not filt:
            raise PatternError(p, "mqtt", "a shared subscription needs '/' and a non-empty filter after the share name")
        share = name
    if not filt:
        raise PatternError(p, "mqtt", "topic filters must be at least one character")
    if len(p) > 65535:
        raise PatternError(p, "mqtt", f"topic filters are at most 65535 bytes, got {len(p)}")
    problem = mqtt_string_problem(p)
    if problem:
        raise PatternError(p, "mqtt", problem)
    levels = filt.split(b"/")
    tokens = []
    for i, lv in enumerate(levels):
        if lv == b"#":
            if i != len(levels) - 1:
                raise PatternError(p, "mqtt", "'#' must be the last level of a filter")
            tokens.append(HASH)
        elif lv == b"+":
            tokens.append(STAR)
        elif b"#" in lv or b"+" in lv:
            raise PatternError(p, "mqtt", f"'+' and '#' must fill a whole level, got level {lv!r}")
        else:
            tokens.append(lv)
    # A leading wildcard never matches '$' topics; mosquitto gives shared filters an empty
    # root level, so they never match '$' topics either.
    no_dollar = share is not None or filt[:1] in (b"+", b"#")
    return Parsed(tuple(tokens), no_dollar, share)


def _parse_nats(p: bytes) -> Parsed:
    if not p:
        raise PatternError(p, "nats", "subjects must not be empty")
    tokens = []
    parts = p.split(b".")
    for i, t in enumerate(parts):
        if not t:
            raise PatternError(p, "nats", "subjects must not have empty tokens")
        if any(c in _NATS_SPACE for c in t):
            raise PatternError(p, "nats", "subjects must not contain whitespace")
        if t == b">":
            if i != len(parts) - 1:
                raise PatternError(p, "nats", "'>' must be the last token")
            tokens += [STAR, HASH]  # one or more tokens
        elif t == b"*":
            tokens.append(STAR)
        else:
            tokens.append(t)
    return Parsed(tuple(tokens), False, None)
