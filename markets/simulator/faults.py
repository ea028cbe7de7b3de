"""The market-data faults a simulated venue takes on command, and the time-boxed ones' clock."""

import asyncio
from dataclasses import dataclass

# drop, malformed: at once; stall, refuse, slow: for a while; gap, bad_checksum: the next frame.
FAULTS = ("drop", "stall", "gap", "bad_checksum", "malformed", "refuse", "slow")
TIME_BOXED = ("stall", "refuse", "slow")


@dataclass(slots=True)
class Faults:
    """A venue's time-boxed faults, as loop times until which each lasts."""

    stall_until: float = 0.0
    refuse_until: float = 0.0
    slow_until: float = 0.0
    delay: float = 0.0

    def start(self, fault: str, seconds: float | None, delay: float | None) -> None:
        """Start a stall, refusal or slow-down from now for `seconds` (or its default)."""
        now = asyncio.get_running_loop().time()
        if fault == "stall":
            self.stall_until = now + (seconds or 5.0)
        elif fault == "refuse":
            self.refuse_until = now + (seconds or 5.0)
        elif fault == "slow":
            self.slow_until = now + (seconds or 10.0)
            self.delay = 0.5 if delay is None else delay
        else:
            raise ValueError(f"{fault} is not one of {TIME_BOXED}")

    def refusing(self) -> bool:
        return asyncio.get_running_loop().time() < self.refuse_until

    async def hold(self, queued_at: float) -> None:
        """Wait out a stall, and a slow-down's delay for a frame queued at `queued_at`."""
        loop = asyncio.get_running_loop()
        while (wait := self.stall_until - loop.time()) > 0:
            await asyncio.sleep(wait)
        if loop.time() < self.slow_until:
            await asyncio.sleep(max(0.0, queued_at + self.delay - loop.time()))
