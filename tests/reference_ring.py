"""Slow, readable reference of the ring's behaviour for one thread: FIFO order plus exact space
accounting (record sizes, the padding record at the wrap, capacity / 8 per message).

It follows the layout in native/ring.h: a record is an 8-byte header, then (for a non-null key)
a 4-byte key length and the key, then the value, rounded up to 8 bytes; a record never wraps,
so when it does not fit before the end of the data area a padding record fills the gap. A
producer may write only while ``tail - head <= capacity``. The consumer hands back the
padding before a message when it takes that message, and padding alone when it finds nothing
after it.
"""

from __future__ import annotations

from collections import deque


def align8(n: int) -> int:
    return (n + 7) // 8 * 8


def record_size(key: bytes | None, value: bytes | None) -> int:
    """Bytes a message occupies in the ring, header and alignment included."""
    size = 8 + (0 if value is None else len(value))
    if key is not None:
        size += 4 + len(key)
    return align8(size)


class RingModel:
    """What a single-threaded user of a Ring of ``capacity`` bytes must observe."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.max_message = capacity // 8
        self.tail = 0      # end of the last record written
        self.head = 0      # end of the last record handed back
        self.entries = deque()  # ("pad", None, None, end) or ("msg", key, value, end)
        self.closed = False

    def __len__(self) -> int:
        return sum(1 for e in self.entries if e[0] == "msg")

    @property
    def bytes_used(self) -> int:
        return self.tail - self.head

    def too_big(self, key, value) -> bool:
        return (0 if key is None else len(key)) + (0 if value is None else len(value)) > self.max_message

    def push(self, key, value) -> bool:
        """Append one message if it fits now; True when it went in."""
        rec = record_size(key, value)
        off = self.tail % self.capacity
        pad = self.capacity - off if off + rec > self.capacity else 0
        if self.tail + pad + rec - self.head > self.capacity:
            return False
        if pad:
            self.tail += pad
            self.entries.append(("pad", None, None, self.tail))
        self.tail += rec
        self.entries.append(("msg", key, value, self.tail))
        return True

    def push_batch(self, items) -> int:
        """Append (key, value) pairs in order while they fit; how many went in."""
        count = 0
        for key, value in items:
            if not self.push(key, value):
                break
            count += 1
        return count

    def _drop_padding(self) -> None:
        while self.entries and self.entries[0][0] == "pad":
            self.entries.popleft()

    def pop(self):
        """The next (key, value), or None when there is no message (padding is handed back)."""
        self._drop_padding()
        if not self.entries:
            self.head = self.tail
            return None
        _, key, value, end = self.entries.popleft()
        self.head = end
        return key, value

    def pop_batch(self, max_messages: int, max_bytes: int | None = None) -> list:
        """Up to max_messages (key, value) pairs, at most max_bytes of key + value bytes but
        always the first; [] when there is no message."""
        out, used, end = [], 0, None
        scan = list(self.entries)
        i = 0
        while i < len(scan) and len(out) < max_messages:
            kind, key, value, e = scan[i]
            if kind == "msg":
                size = (0 if key is None else len(key)) + (0 if value is None else len(value))
                if out and max_bytes is not None and used + size > max_bytes:
                    break
                out.append((key, value))
                used += size
                end = i
            i += 1
        if not out:
            self.entries.clear()
            self.head = self.tail
            return []
        for _ in range(end + 1):
            self.entries.popleft()
        self.head = scan[end][3]
        return out
