"""Synthetic workloads shared by the benchmarks and the demo (seeded, so runs compare)."""

from __future__ import annotations

import numpy as np


def amqp_vocabulary(levels: int = 6, words_per_level: int = 50) -> list:
    """Per level, the words that bindings and keys draw from."""
    return [[f"l{lv}w{k}" for k in range(words_per_level)] for lv in range(levels)]


def amqp_bindings(n: int, *, queues: int | None = None, star: float = 0.15, hash_: float = 0.05,
                  min_words: int = 3, max_words: int = 6, words_per_level: int = 50,
                  seed: int = 1) -> list:
    """n (pattern, queue) AMQP topic bindings: 3–6 words, each word '*' with probability
    ``star``, '#' with probability ``hash_``, else a word of its level's vocabulary."""
    rng = np.random.default_rng(seed)
    vocab = amqp_vocabulary(max_words, words_per_level)
    queues = queues or max(1, n // 10)
    out = []
    lengths = rng.integers(min_words, max_words + 1, n)
    for i in range(n):
        words = []
        for lv in range(lengths[i]):
            r = rng.random()
            if r < star:
                words.append("*")
            elif r < star + hash_:
                words.append("#")
            else:
                words.append(vocab[lv][rng.integers(words_per_level)])
        out.append((".".join(words), f"q{rng.integers(queues)}"))
    return out


def amqp_keys(n: int, *, min_words: int = 3, max_words: int = 6, words_per_level: int = 50,
              seed: int = 2) -> list:
    """n routing keys (bytes) of 3–6 words drawn from the same per-level vocabulary."""
    rng = np.random.default_rng(seed)
    vocab = [[w.encode() for w in lv] for lv in amqp_vocabulary(max_words, words_per_level)]
    lengths = rng.integers(min_words, max_words + 1, n)
    picks = rng.integers(0, words_per_level, (n, max_words))
    return [b".".join(vocab[lv][picks[i, lv]] for lv in range(lengths[i])) for i in range(n)]


def mqtt_filters(n: int, *, plus: float = 0.15, hash_: float = 0.05, min_levels: int = 3,
                 max_levels: int = 6, words_per_level: int = 50, seed: int = 3) -> list:
    """n (filter, client) MQTT subscriptions: '+' per level with probability ``plus``, a
    trailing '#' with probability ``hash_`` per filter (MQTT allows '#' only last)."""
    rng = np.random.default_rng(seed)
    vocab = amqp_vocabulary(max_levels, words_per_level)
    out = []
    for i in range(n):
        levels = []
        for lv in range(rng.integers(min_levels, max_levels + 1)):
            levels.append("+" if rng.random() < plus else vocab[lv][rng.integers(words_per_level)])
        if rng.random() < hash_:
            levels[-1] = "#"
        out.append(("/".join(levels), f"c{rng.integers(max(1, n // 10))}"))
    return out


def mqtt_topics(n: int, **kw) -> list:
    """n topic names: the AMQP keys with '/' between levels."""
    return [k.replace(b".", b"/") for k in amqp_keys(n, **kw)]
