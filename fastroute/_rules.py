"""Building a router from a rules document (the TOML or JSON that `fastroute route` reads)."""

from __future__ import annotations

import json
from pathlib import Path

ROUTERS = ("topic", "direct", "fanout", "headers", "partitioner", "round_robin", "random")


class RulesError(ValueError):
    """A rules document that does not describe a router; the message says what is wrong."""


def load_rules(path) -> dict:
    """Read a rules file: ``.toml`` or ``.json`` (by suffix).

    Raises RulesError when the file cannot be parsed.
    """
    path = Path(path)
    text = path.read_bytes()
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            return tomllib.loads(text.decode("utf-8"))
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot parse rules ({exc})") from None


def _pairs(rules: dict, what: str) -> list:
    bindings = rules.get("bindings")
    if not isinstance(bindings, list):
        raise RulesError(f"router {rules.get('router')!r} needs 'bindings', a list of {what}")
    out = []
    for k, b in enumerate(bindings):
        if isinstance(b, dict):
            if "destination" not in b:
                raise RulesError(f"binding {k} needs a 'destination', got {b!r}")
            key = b.get("pattern", b.get("key", b.get("arguments")))
            item = (key, b["destination"]) if "queue_group" not in b else (key, b["destination"], b["queue_group"])
        elif isinstance(b, (list, tuple)) and len(b) in (2, 3):
            item = tuple(b)
        else:
            raise RulesError(f"binding {k} must be a [{what.split(',')[0]}, destination] pair or a table, got {b!r}")
        out.append(item)
    return out


def build_router(rules: dict):
    """Return the Router a rules document describes.

    Keys: ``router`` (one of ROUTERS), then per router: ``bindings`` (topic, direct, headers),
    ``dialect`` and ``seed`` (topic), ``compat`` (headers), ``destinations`` (fanout,
    round_robin, random, with optional ``weights`` and ``seed`` for random), ``partitions``
    and ``algorithm`` and ``seed`` (partitioner); ``alternate`` (a destination name) for all.

    Raises RulesError for a missing or unknown key; the routers' own errors (PatternError,
    ValueError) pass through.
    """
    import fastroute as fr

    if not isinstance(rules, dict):
        raise RulesError(f"rules must be a table, got {type(rules).__name__}")
    kind = rules.get("router")
    if kind not in ROUTERS:
        raise RulesError(f"'router' must be one of {', '.join(ROUTERS)}, got {kind!r}")
    alt = rules.get("alternate")
    if kind == "topic":
        return fr.TopicRouter(_pairs(rules, "pattern, destination"), dialect=rules.get("dialect", "amqp"),
                              alternate=alt, seed=rules.get("seed"),
                              max_hash_wildcards=rules.get("max_hash_wildcards"))
    if kind == "direct":
        return fr.DirectRouter(_pairs(rules, "key, destination"), alternate=alt)
    if kind == "headers":
        return fr.HeadersRouter(_pairs(rules, "arguments, destination"), compat=rules.get("compat", "3.13"),
                                alternate=alt)
    if kind == "partitioner":
        if "partitions" not in rules:
            raise RulesError("router 'partitioner' needs 'partitions' (an integer)")
        return fr.Partitioner(rules["partitions"], algorithm=rules.get("algorithm", "murmur2"),
                              seed=rules.get("seed"), alternate=alt)
    dests = rules.get("destinations")
    if not isinstance(dests, list):
        raise RulesError(f"router {kind!r} needs 'destinations', a list of names")
    if kind == "fanout":
        return fr.FanoutRouter(dests, alternate=alt)
    if kind == "round_robin":
        return fr.RoundRobinRouter(dests, alternate=alt)
    return fr.RandomRouter(dests, seed=rules.get("seed"), weights=rules.get("weights"), alternate=alt)
