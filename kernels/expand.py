"""From answers per distinct key to Routes per message (unions, group picks)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import PARALLEL, SERIAL
from .keys import mix64
from .topic import sort_unique

#: How a group of competing members picks one (MQTT shared subscriptions / NATS queue groups).
ROUND_ROBIN = 0
RANDOM = 1


@njit(**PARALLEL)
def expand_single(inverse, start, count, buf):
    """Routes when each message has one key: message i gets the answer of distinct key
    u = inverse[i] (-1 = no key, no destination), the slice buf[start[u]:start[u]+count[u]].
    Returns (offsets, destinations)."""
    n = inverse.shape[0]
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    for i in range(n):
        u = inverse[i]
        offsets[i + 1] = offsets[i] + (count[u] if u >= 0 else 0)
    out = np.empty(offsets[n], np.int32)
    for i in prange(n):
        u = inverse[i]
        if u >= 0:
            a = start[u]
            b = offsets[i]
            for j in range(count[u]):
                out[b + j] = buf[a + j]
    return offsets, out


@njit(**SERIAL)
def _pick(policy, cursors, g, m, seed, msg_no):
    if policy == ROUND_ROBIN:
        k = cursors[g] % m
        cursors[g] += 1
        return k
    h = mix64(np.uint64(seed) ^ mix64(np.uint64(msg_no) * np.uint64(0x9E3779B97F4A7C15)
                                      + np.uint64(g)))
    return np.int64(h % np.uint64(m))


@njit(**SERIAL)
def expand_multi(msg_off, msg_keys, u_off, u_dest, u_goff, u_gb, gb_group, gb_dest,
                 policy, cursors, seed, counter):
    """Routes when messages may have several keys (CC/BCC) and groups that pick one member.

    Message i's keys are msg_keys[msg_off[i]:msg_off[i+1]] (distinct-key ids). Its
    destinations are the union of its keys' plain destinations plus, for each group reached
    through any of its keys, one member: round-robin over the group's members in message
    order (``cursors`` per group, updated in place), or a seeded pick among the reaching
    members (each counted as often as it is reached) for RANDOM, where ``counter`` numbers
    the messages across batches.
    """
    n = msg_off.shape[0] - 1
    bound = 0
    max_c = 1
    for i in range(n):
        c = 0
        for k in range(msg_off[i], msg_off[i + 1]):
            u = msg_keys[k]
            bound += u_off[u + 1] - u_off[u]
            c += u_goff[u + 1] - u_goff[u]
        bound += c
        if c > max_c:
            max_c = c
    out = np.empty(bound, np.int32)
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    cand = np.empty(max_c, np.int64)
    pos = 0
    for i in range(n):
        start = pos
        nc = 0
        for k in range(msg_off[i], msg_off[i + 1]):
            u = msg_keys[k]
            for j in range(u_off[u], u_off[u + 1]):
                out[pos] = u_dest[j]
                pos += 1
            for j in range(u_goff[u], u_goff[u + 1]):
                cand[nc] = u_gb[j]
                nc += 1
        if nc:
            # stable insertion sort of candidates by group keeps member order within a group
            for a in range(1, nc):
                v = cand[a]
                b = a - 1
                while b >= 0 and gb_group[cand[b]] > gb_group[v]:
                    cand[b + 1] = cand[b]
                    b -= 1
                cand[b + 1] = v
            a = 0
            while a < nc:
                g = gb_group[cand[a]]
                b = a
                while b < nc and gb_group[cand[b]] == g:
                    b += 1
                k = _pick(policy, cursors, g, b - a, seed, counter + i)
                out[pos] = gb_dest[cand[a + k]]
                pos += 1
                a = b
        pos = sort_unique(out, start, pos)
        offsets[i + 1] = pos
    return offsets, out[:pos].copy()


@njit(**SERIAL)
def keys_per_message(n, primary, owner, extra):
    """CSR of distinct-key ids per message: primary[i] (if >= 0) then the extra keys whose
    owner is i (``owner`` ascending). Returns (msg_off, msg_keys)."""
    msg_off = np.zeros(n + 1, np.int64)
    for i in range(n):
        msg_off[i + 1] = 1 if primary[i] >= 0 else 0
    for e in range(owner.shape[0]):
        if extra[e] >= 0:
            msg_off[owner[e] + 1] += 1
    for i in range(n):
        msg_off[i + 1] += msg_off[i]
    msg_keys = np.empty(msg_off[n], np.int64)
    fill = msg_off[:n].copy()
    for i in range(n):
        if primary[i] >= 0:
            msg_keys[fill[i]] = primary[i]
            fill[i] += 1
    for e in range(owner.shape[0]):
        if extra[e] >= 0:
            msg_keys[fill[owner[e]]] = extra[e]
            fill[owner[e]] += 1
    return msg_off, msg_keys
