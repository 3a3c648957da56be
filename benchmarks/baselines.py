"""What a user would write without fastroute: per-message Python routing loops."""

from __future__ import annotations


class DictTrie:
    """A topic trie of nested dicts, matched recursively one key at a time (AMQP rules)."""

    def __init__(self, bindings):
        self.root: dict = {}
        for pattern, dest in bindings:
            node = self.root
            for word in ([] if pattern == "" else pattern.split(".")):
                node = node.setdefault(word, {})
            node.setdefault(None, set()).add(dest)

    def match(self, key: str) -> set:
        words = [] if key == "" else key.split(".")
        out: set = set()
        self._walk(self.root, words, 0, out)
        return out

    def _walk(self, node, words, i, out):
        if i == len(words):
            if None in node:
                out |= node[None]
        else:
            child = node.get(words[i])
            if child is not None:
                self._walk(child, words, i + 1, out)
            child = node.get("*")
            if child is not None:
                self._walk(child, words, i + 1, out)
        child = node.get("#")
        if child is not None:
            for k in range(i, len(words) + 1):
                self._walk(child, words, k, out)


def kombu_topic(bindings):
    """kombu's in-memory TopicExchange (regex per binding) as a key -> set-of-queues function."""
    from kombu.transport.virtual.exchange import TopicExchange

    exchange = TopicExchange(channel=None)
    table = [exchange.prepare_bind(q, "ex", pattern, {}) for pattern, q in bindings]
    return lambda key: exchange.lookup(table, "ex", key, None)


def paho_matcher(filters):
    """paho-mqtt's MQTTMatcher holding, per filter, the set of subscribed clients."""
    from paho.mqtt.matcher import MQTTMatcher

    m = MQTTMatcher()
    for f, client in filters:
        try:
            m[f].add(client)
        except KeyError:
            m[f] = {client}

    def match(topic):
        out = set()
        for clients in m.iter_match(topic):
            out |= clients
        return out

    return match
