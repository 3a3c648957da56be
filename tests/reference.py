"""Slow, readable reference implementations of every routing rule fastroute compiles.

Each function follows the rule as SEMANTICS.md states it, one message at a time, with no
cleverness, so that the compiled kernels can be checked against it. Keys and patterns are
bytes (str is taken as UTF-8).
"""

from __future__ import annotations

import functools
import math
import zlib


def _b(x) -> bytes:
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


# --------------------------------------------------------------------------- AMQP topic

def amqp_words(key) -> list:
    """Split a routing key at '.'; the empty key has zero words, empty words are words."""
    key = _b(key)
    return [] if key == b"" else key.split(b".")


def amqp_words_match(f: list, t: list) -> bool:
    """RabbitMQ's ref_match: '*' is one word, '#' zero or more, literals compare byte-exact."""

    @functools.lru_cache(maxsize=None)
    def m(i: int, j: int) -> bool:
        if i == len(f):
            return j == len(t)
        if f[i] == b"#":
            return any(m(i + 1, k) for k in range(j, len(t) + 1))
        if j == len(t):
            return False
        if f[i] == b"*" or f[i] == t[j]:
            return m(i + 1, j + 1)
        return False

    return m(0, 0)


def amqp_match(pattern, key) -> bool:
    return amqp_words_match(amqp_words(pattern), amqp_words(key))


def amqp_valid_pattern(pattern, max_hash_wildcards=None) -> bool:
    """A binding key RabbitMQ accepts: UTF-8, at most 255 bytes, optionally at most N '#' words."""
    p = _b(pattern)
    try:
        p.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if len(p) > 255:
        return False
    if max_hash_wildcards is not None and amqp_words(p).count(b"#") > max_hash_wildcards:
        return False
    return True


# --------------------------------------------------------------------------- MQTT

def mqtt_valid_utf8(s: bytes) -> bool:
    """mosquitto's string check: well-formed UTF-8 without NUL, control characters
    (U+0001..U+001F, U+007F..U+009F) or non-characters (U+FDD0..U+FDEF, U+xxFFFE, U+xxFFFF)."""
    try:
        text = s.decode("utf-8")
    except UnicodeDecodeError:
        return False
    for ch in text:
        c = ord(ch)
        if c <= 0x1F or 0x7F <= c <= 0x9F or 0xFDD0 <= c <= 0xFDEF or (c & 0xFFFF) >= 0xFFFE:
            return False
    return True


def mqtt_valid_filter(f) -> bool:
    """An MQTT topic filter as MQTT 3.1.1/5.0 and mosquitto accept it (shared prefix removed)."""
    f = _b(f)
    if not f or len(f) > 65535 or not mqtt_valid_utf8(f):
        return False
    levels = f.split(b"/")
    for i, lv in enumerate(levels):
        if b"#" in lv and (lv != b"#" or i != len(levels) - 1):
            return False
        if b"+" in lv and lv != b"+":
            return False
    return True


def mqtt_valid_topic(t) -> bool:
    """A PUBLISH topic name mosquitto accepts: non-empty, valid (see above), no wildcard characters."""
    t = _b(t)
    if not t or len(t) > 65535 or b"+" in t or b"#" in t:
        return False
    return mqtt_valid_utf8(t)


def mqtt_parse_shared(f):
    """Return (share_name, filter) for '$share/{name}/{filter}', or (None, f); None if invalid."""
    f = _b(f)
    if not f.startswith(b"$share/"):
        return None, f
    rest = f[len(b"$share/"):]
    name, sep, filt = rest.partition(b"/")
    if not name or not sep or not filt or b"+" in name or b"#" in name:
        return None
    return name, filt


def mqtt_match(filt, topic) -> bool:
    """The MQTT matching procedure, with the '$' rule for a leading wildcard."""
    filt, topic = _b(filt), _b(topic)
    if not mqtt_valid_topic(topic):
        return False
    if topic.startswith(b"$") and filt[:1] in (b"+", b"#"):
        return False
    fl, tl = filt.split(b"/"), topic.split(b"/")
    for i, f in enumerate(fl):
        if f == b"#":
            return True
        if i >= len(tl):
            return False
        if f != b"+" and f != tl[i]:
            return False
    return len(fl) == len(tl)


def mqtt_shared_match(filt, topic) -> bool:
    """A shared subscription's filter matches like a plain one but never reaches '$' topics."""
    return not _b(topic).startswith(b"$") and mqtt_match(filt, topic)


# --------------------------------------------------------------------------- NATS

_NATS_SPACE = b" \t\n\r\f"


def nats_valid_subscription(s) -> bool:
    """nats-server's isValidSubject (without checkRunes)."""
    s = _b(s)
    if not s:
        return False
    tokens = s.split(b".")
    for i, t in enumerate(tokens):
        if not t:
            return False
        if any(c in t for c in _NATS_SPACE):
            return False
        if t == b">" and i != len(tokens) - 1:
            return False
    return True


def nats_match(subject, filt) -> bool:
    """NATS: '*' one token, '>' one or more trailing tokens; an empty subject token has no interest."""
    st, ft = _b(subject).split(b"."), _b(filt).split(b".")
    if any(t == b"" for t in st):
        return False
    for i, f in enumerate(ft):
        if f == b">":
            return i < len(st)
        if i >= len(st):
            return False
        if f != b"*" and f != st[i]:
            return False
    return len(ft) == len(st)


# --------------------------------------------------------------------------- routers

def topic_route(bindings, key, dialect="amqp", headers=None) -> set:
    """Destinations of one message through topic bindings (no shared / queue groups).

    ``bindings`` are (pattern, destination) pairs. For AMQP the CC and BCC headers (lists of
    str) add routing keys; the answer is the union.
    """
    if key is None:
        keys = []
    else:
        keys = [_b(key)]
    if dialect == "amqp":
        keys += routing_header_keys(headers)
    out = set()
    for k in keys:
        for pattern, dest in bindings:
            if dialect == "amqp":
                hit = amqp_match(pattern, k)
            elif dialect == "mqtt":
                hit = mqtt_match(pattern, k)
            else:
                hit = nats_match(k, pattern)
            if hit:
                out.add(dest)
    return out


def routing_header_keys(headers) -> list:
    """CC then BCC: the str elements of those list headers, as bytes (others skipped)."""
    if not headers:
        return []
    table = dict(headers) if not isinstance(headers, dict) else headers
    out = []
    for name in ("CC", "BCC"):
        v = table.get(name)
        if v is None and name not in table:
            continue
        if not isinstance(v, (list, tuple)):
            raise TypeError(f"{name} header must be an array")
        out += [x.encode("utf-8") for x in v if isinstance(x, str)]
    return out


def direct_route(bindings, key, headers=None) -> set:
    keys = ([] if key is None else [_b(key)]) + routing_header_keys(headers)
    return {dest for k in keys for bk, dest in bindings if _b(bk) == k}


# --------------------------------------------------------------------------- headers exchange

def _header_equal(a, b, compat: str) -> bool:
    """Equality of two untyped header values as RabbitMQ compares them."""
    def kind(v):
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        if isinstance(v, float):
            return "float"
        if isinstance(v, (str, bytes, bytearray)):
            return "bytes"
        if isinstance(v, (list, tuple)):
            return "list"
        if isinstance(v, dict):
            return "dict"
        return "none"

    ka, kb = kind(a), kind(b)
    if ka == "bytes" and kb == "bytes":
        return _b(a) == _b(b)
    if compat == "3.12" and {ka, kb} <= {"int", "float"}:
        if isinstance(a, float) and math.isnan(a) or isinstance(b, float) and math.isnan(b):
            return False
        return a == b  # Python compares int and float exactly, as Erlang's == does here
    if ka != kb:
        return False
    if ka in ("list", "dict"):
        return _nested_equal(a, b)
    return a == b


def _nested_equal(a, b) -> bool:
    """Nested arrays and tables keep their inner types: compare type and value exactly."""
    if type(a) is not type(b) and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))):
        return False
    if isinstance(a, dict):
        return list(a.keys()) == list(b.keys()) and all(_nested_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_nested_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b and not math.isnan(a)
    return a == b


def headers_match(args: dict, headers, compat: str = "3.13") -> bool:
    """RabbitMQ's headers exchange test of one binding's arguments against one message."""
    mode = args.get("x-match", "all")
    if mode not in ("all", "any", "all-with-x", "any-with-x"):
        raise ValueError(f"invalid x-match {mode!r}")
    table = {}
    for name, value in (headers.items() if isinstance(headers, dict) else (headers or [])):
        table[name] = value  # a repeated name keeps its last value
    checks = []
    for name, value in args.items():
        if name == "x-match":
            continue
        if name.startswith("x-") and mode in ("all", "any"):
            continue
        if value is None:
            checks.append(name in table)
        else:
            checks.append(name in table and _header_equal(table[name], value, compat))
    if mode.startswith("all"):
        return all(checks)
    return any(checks)


def headers_route(bindings, headers, compat="3.13") -> set:
    return {dest for args, dest in bindings if headers_match(args, headers, compat)}


# --------------------------------------------------------------------------- Kafka hashes

def murmur2(data) -> int:
    """Kafka's murmur2 (Java client Utils.murmur2), as a signed 32-bit int."""
    data = _b(data)
    n = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ n) & 0xFFFFFFFF
    full = n - n % 4
    for i in range(0, full, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    t = n % 4
    if t == 3:
        h ^= data[full + 2] << 16
    if t >= 2:
        h ^= data[full + 1] << 8
    if t >= 1:
        h ^= data[full]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def crc32(data) -> int:
    """CRC-32/ISO-HDLC (zlib), unsigned."""
    return zlib.crc32(_b(data)) & 0xFFFFFFFF


def fnv1a(data) -> int:
    """librdkafka's fnv1a: 32-bit FNV-1a read as int32, negated when negative, as u32."""
    h = 0x811C9DC5
    for c in _b(data):
        h ^= c
        h = (h * 0x01000193) & 0xFFFFFFFF
    s = h - (1 << 32) if h & 0x80000000 else h
    if s < 0:
        s = -s
    return s & 0xFFFFFFFF


def partition(key, n: int, algorithm: str):
    """The partition of one key, or None where the algorithm draws a random one."""
    if algorithm == "murmur2":
        return (murmur2(b"" if key is None else key) & 0x7FFFFFFF) % n
    if algorithm == "murmur2_random":
        return None if key is None else (murmur2(key) & 0x7FFFFFFF) % n
    if algorithm == "consistent":
        return 0 if not key else crc32(key) % n
    if algorithm == "consistent_random":
        return None if not key else crc32(key) % n
    if algorithm == "fnv1a":
        return fnv1a(b"" if key is None else key) % n
    if algorithm == "fnv1a_random":
        return None if key is None else fnv1a(key) % n
    raise ValueError(algorithm)
