"""Normalized values passed between venue modules and the connection manager."""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Send:
    """A text frame the connection manager must send on the venue's socket."""

    text: str


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Drop the connection and open a new one (all books of the connection start over)."""

    reason: str


@dataclass(frozen=True, slots=True)
class FetchSnapshot:
    """GET `url` and hand the body to the venue's `handle_snapshot(market, body, ts)`."""

    market: str
    url: str


Action = Send | Reconnect | FetchSnapshot


@dataclass(slots=True)
class FeedStats:
    """Counters of one venue connection, kept by the venue module."""

    frames: int = 0
    book_updates: int = 0
    gaps: int = 0
    checksum_ok: int = 0
    checksum_failed: int = 0
    resyncs: int = 0
    malformed: int = 0
    ignored: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return the counters as a plain dict (the last few venue error texts included)."""
        return {
            "frames": self.frames,
            "book_updates": self.book_updates,
            "gaps": self.gaps,
            "checksum_ok": self.checksum_ok,
            "checksum_failed": self.checksum_failed,
            "resyncs": self.resyncs,
            "malformed": self.malformed,
            "ignored": self.ignored,
            "errors": self.errors[-5:],
        }
