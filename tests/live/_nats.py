"""NATS helpers for the tests (nats-py, asyncio): subscribe, publish, collect by tag."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import nats
import nats.aio.client as nats_client

#: Longest wait for the fence message (and any one pending message).
FENCE_TIMEOUT_S = 15.0


@contextlib.contextmanager
def literal_wildcard_subjects():
    """Let nats-py subscribe to subjects with literal wildcard-like tokens (``foo*``, ``a>b``).

    nats-server accepts them as literals (``TestSublistValidLiteralSubjects``), but nats-py
    2.16 refuses them client-side. Inside this block subscriptions get the same check as
    publishing (non-empty, no whitespace); the server still validates everything else.
    """
    original = getattr(nats_client, "_validate_subject", None)
    if original is None:  # older nats-py: no client-side check to relax
        yield
        return
    nats_client._validate_subject = lambda subject, strict=False: original(subject)
    try:
        yield
    finally:
        nats_client._validate_subject = original


async def _observe(url: str, subscriptions: list, subjects: list, tag: str) -> dict:
    """See :func:`observe`."""
    tag_b = tag.encode()
    errors = []

    async def on_error(exc):
        errors.append(exc)

    # One connection subscribes and publishes. The server handles its commands in order and
    # writes its deliveries in order, so once the fence (published last) comes back, every
    # earlier delivery has been parsed into its subscription's pending queue. (flush() cannot
    # serve here: nats-py 2.16 writes its PING ahead of commands still buffered.)
    conn = await nats.connect(url, allow_reconnect=False, connect_timeout=5, error_cb=on_error)
    try:
        subs = []
        with literal_wildcard_subjects():
            for filt, dest, queue in subscriptions:
                # Unbounded pending queues: a root-level '>' also receives everyone else's
                # traffic, and a bounded queue would drop messages of ours behind it.
                subs.append((dest, await conn.subscribe(filt, queue=queue or "", pending_msgs_limit=0,
                                                       pending_bytes_limit=0)))
        fence_subject = f"fastroute-fence.{tag.strip(':').replace(':', '-')}"
        fence = await conn.subscribe(fence_subject)
        for seq, subject in enumerate(subjects):
            await conn.publish(subject, tag_b + str(seq).encode())
        await conn.publish(fence_subject, b"fence")
        await fence.next_msg(timeout=FENCE_TIMEOUT_S)
        if errors:
            raise RuntimeError(f"the NATS client reported errors, so deliveries may be missing: {errors[:3]}")
        copies = {dest: Counter() for dest, _ in subs}
        for dest, sub in subs:
            for _ in range(sub.pending_msgs):
                data = (await sub.next_msg(timeout=FENCE_TIMEOUT_S)).data
                if data.startswith(tag_b):
                    copies[dest][int(data[len(tag_b):])] += 1
        return copies
    finally:
        await conn.close()


def observe(url: str, subscriptions: list, subjects: list, tag: str) -> dict:
    """Subscribe, publish every subject once, and count what each destination received.

    ``subscriptions`` are (filter, destination, queue group or None) triples, one NATS
    subscription each; message i goes to ``subjects[i]`` with payload ``{tag}{i}``. Returns
    {destination: Counter(seq -> copies)}; untagged traffic from elsewhere is ignored.
    """
    return asyncio.run(_observe(url, subscriptions, subjects, tag))
