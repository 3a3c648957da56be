"""Slow, readable reference rules the live tests need beyond ``tests/reference.py``.

Each function decides one message, following SEMANTICS.md §2, §4, §10 and §11 literally.
"""

from __future__ import annotations

import reference


def fanout_route(destinations, key=None) -> set:
    """A fanout exchange: every bound destination, whatever the key (SEMANTICS §2)."""
    return set(destinations)


def alternate_route(primary: set, fallback) -> set:
    """An exchange with an alternate exchange (SEMANTICS §4, without exchange-to-exchange).

    ``primary`` is the exchange's own answer; ``fallback`` is a zero-argument callable giving
    the alternate's answer (itself possibly an alternate chain). The alternate is used only
    when the primary routes nowhere.
    """
    return set(primary) if primary else set(fallback())


def mqtt_copies(filters, topic) -> int:
    """How many of one client's distinct (non-shared) filters match a topic."""
    return sum(1 for f in set(filters) if reference.mqtt_match(f, topic))


def nats_copies(filters, subject) -> int:
    """How many of one connection's subscriptions (one per filter) match a subject."""
    return sum(1 for f in filters if reference.nats_match(subject, f))


def mqtt_shared_groups(subscriptions, topic) -> dict:
    """Eligible members per shared group for one topic (SEMANTICS §10).

    ``subscriptions`` are ("$share/{name}/{filter}", member) pairs. A group is the pair
    (share name, filter); its eligible members are all its members when the filter matches the
    topic under the shared rule (never a '$' topic), else none.
    """
    groups: dict = {}
    for sub, member in subscriptions:
        name, filt = reference.mqtt_parse_shared(sub)
        key = (name, filt)
        groups.setdefault(key, set())
        if reference.mqtt_shared_match(filt, topic):
            groups[key].add(member)
    return groups


def nats_queue_groups(subscriptions, subject) -> dict:
    """Eligible members per NATS queue group for one subject (SEMANTICS §11).

    ``subscriptions`` are (filter, member, queue) triples. Queue subscriptions are grouped by
    queue name across all their filters; a member is eligible when one of its filters matches.
    """
    groups: dict = {}
    for filt, member, queue in subscriptions:
        groups.setdefault(queue, set())
        if reference.nats_match(subject, filt):
            groups[queue].add(member)
    return groups
