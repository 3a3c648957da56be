"""The exceptions fastroute raises; every one derives from :class:`FastrouteError`."""

from __future__ import annotations


class FastrouteError(Exception):
    """Base class of every error fastroute raises on purpose."""


class PatternError(FastrouteError, ValueError):
    """A binding pattern or binding argument that the broker would refuse.

    Attributes:
        pattern: the offending pattern (or argument table), as given.
        dialect: the routing model whose rules it breaks (``"amqp"``, ``"mqtt"``, ...).
        rule: the rule it breaks, in words.
    """

    def __init__(self, pattern, dialect: str, rule: str):
        self.pattern = pattern
        self.dialect = dialect
        self.rule = rule
        super().__init__(f"invalid {dialect} pattern {pattern!r}: {rule}")


class BatchError(FastrouteError, ValueError):
    """Malformed batch input: a key, value or header of the wrong type or shape.

    Attributes:
        index: the message index at fault, or None when the fault is not tied to one message.
    """

    def __init__(self, message: str, index: int | None = None):
        self.index = index
        super().__init__(message)


class FrameError(FastrouteError, ValueError):
    """A corrupt, truncated or unsupported frame.

    Attributes:
        offset: the byte offset in the buffer where the problem was found, or None.
    """

    def __init__(self, message: str, offset: int | None = None):
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at byte offset {offset})")


class BackendUnavailable(FastrouteError, RuntimeError):
    """The requested backend (for example ``"gpu"``) cannot run here; the message says why."""


class QueueFull(FastrouteError):
    """A push found no room before its timeout (or the message can never fit)."""


class QueueEmpty(FastrouteError):
    """A pop found nothing to read before its timeout."""


class QueueClosed(FastrouteError):
    """The queue was closed: pushes are refused, and pops fail once it is drained."""
