"""The peers' benchmark: other projects' books on the same generated frames, against ccxt's.

Each peer lives in its own venv under var/bench/venvs/<name> (their pins conflict: Nautilus
brings its own numpy/pandas/pyarrow, cryptofeed its aiohttp stack), made from
requirements-peers-<name>.txt the first time `make bench` runs this; a peer that does not install
gets a row saying why, and the others run. Each peer's runner (bench/peer_<name>.py) holds the
frames in memory and times its own replay; the ccxt baseline runs here before each peer's run,
so each ratio is to the baseline of the same moment; medians of `runs` rounds.
"""

import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bench import hot_path, peer_common
from trading.engine.replay import Replay

ROOT = Path(__file__).resolve().parents[1]
VENVS = hot_path.CACHE / "venvs"


@dataclass(frozen=True, slots=True)
class PeerSpec:
    """One row of the table: which venv, which runner, and what that peer checks."""

    venv: str
    label: str
    module: str
    checks: str
    args: tuple[str, ...] = ()

    @property
    def requirements(self) -> Path:
        return ROOT / f"requirements-peers-{self.venv}.txt"


PEERS = (
    PeerSpec(
        "orderbook",
        "bmoscon `order-book` (C) + msgspec + its Kraken CRC + sequences",
        "bench.peer_orderbook",
        "Kraken CRC32, Coinbase sequence, Binance update ids",
    ),
    PeerSpec(
        "nautilus",
        "Nautilus Trader `OrderBook` (Rust) + msgspec, one delta per level",
        "bench.peer_nautilus",
        "none",
    ),
    PeerSpec(
        "nautilus",
        "same, Kraken sides cut to the 25 wire levels",
        "bench.peer_nautilus",
        "none",
        ("--cut",),
    ),
    PeerSpec(
        "cryptofeed",
        "cryptofeed: its Kraken v2, Coinbase, Binance handlers (C book)",
        "bench.peer_cryptofeed",
        "Kraken CRC32, Coinbase sequence, Binance update ids, crossed book",
    ),
)


# -- venvs -------------------------------------------------------------------------------------


def ensure_venv(venv: str, requirements: Path) -> str | None:
    """Make (or reuse) the peer's venv; the reason it cannot be made, or None when ready."""
    home = VENVS / venv
    stamp = home / ".installed"
    wanted = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return None
    print(f"  installing {venv} into {home.relative_to(ROOT)} ...", flush=True)
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(home)],
        [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode:
            lines = [line for line in done.stderr.splitlines() if "WARNING" not in line]
            return "not installable here: " + (lines[-1] if lines else f"exit {done.returncode}")
    stamp.write_text(wanted)
    return None


# -- the runners -------------------------------------------------------------------------------


class Runner:
    """One peer's runner process, spoken to a line at a time (see bench/peer_common.py)."""

    def __init__(self, spec: PeerSpec, path: Path) -> None:
        python = VENVS / spec.venv / "bin" / "python"
        command = [str(python), "-m", spec.module, str(path), *spec.args]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        ready = self.answer()
        self.frames = ready["frames"]

    def answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise RuntimeError(f"runner exited ({code}) without answering")
        message = json.loads(line)
        if "error" in message:
            raise RuntimeError(message["error"])
        return message

    def run(self) -> dict:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self.answer()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)


# -- right or wrong ----------------------------------------------------------------------------


def truth_by_venue_symbol(books_at_end: dict) -> dict[str, dict]:
    """`books_at_end` ("venue:MARKET") re-keyed by each venue's own symbol, as peers report."""
    truth = {}
    for key, book in books_at_end.items():
        venue, market = key.split(":", 1)
        symbol = hot_path.MARKETS[market].listings[venue].symbol
        truth[f"{venue}:{symbol}"] = book
    return truth


def same_price(left: str | None, right: str | None) -> bool:
    if left is None or right is None:
        return left is right
    return Decimal(left) == Decimal(right)


def truth_at_checkpoints(records: list[dict]) -> list[dict[str, dict]]:
    """The project's books at each of the runners' checkpoints, by venue symbol; a clean run."""
    replay = Replay(hot_path.venue_configs(), hot_path.LIMITS)
    truths = []
    for start, end in peer_common.spans(len(records)):
        replay.run(records[start:end], lambda event: None)
        truths.append(truth_by_venue_symbol(replay.summary(1.0)["books_at_end"]))
    hot_path.check_clean(replay)
    return truths


def differences(tops: dict[str, dict], truth: dict[str, dict]) -> list[str]:
    """Each book whose bid or ask is not the truth's, or that one side has and the other not."""
    wrong = []
    for key, book in sorted(truth.items()):
        if not book.get("valid", True):
            continue  # an invalid book has no right answer to hold a peer to
        top = tops.get(key)
        if top is None:
            wrong.append(f"{key} missing")
            continue
        for side in ("bid", "ask"):
            if not same_price(top[side], book[side]):
                wrong.append(f"{key} {side} {top[side]} (truth {book[side]})")
    return wrong + [f"{key} not in the truth" for key in sorted(set(tops) - set(truth))]


def judge(tops: list[dict[str, dict]], truths: list[dict[str, dict]]) -> str:
    """Say "right" when every top equals the truth's at every checkpoint, else where it first
    differs: a book can be wrong midway and right again at the end (a stale level that surfaced
    and was overwritten later)."""
    if len(tops) != len(truths):
        return f"wrong: {len(tops)} checkpoints reported, not {len(truths)}"
    found_at = [differences(top, truth) for top, truth in zip(tops, truths, strict=True)]
    wrong = [(n, found) for n, found in enumerate(found_at) if found]
    if not wrong:
        return f"right ({len(truths[-1])} books at {len(truths)} checkpoints)"
    first, found = wrong[0]
    more = f" and {len(found) - 2} more" if len(found) > 2 else ""
    return (
        f"wrong at {len(wrong)} of {len(truths)} checkpoints, first at "
        f"{(first + 1) * 100 // len(truths)} %: " + "; ".join(found[:2]) + more
    )


def failures(counters: dict[str, int]) -> str:
    """The checks that fired on a clean recording (each one is a bug on one side or the other)."""
    fired = {
        name: count
        for name, count in counters.items()
        if count and name in ("checksum_failed", "gaps", "other_errors", "malformed")
    }
    return ", ".join(f"{name} {count:,}" for name, count in fired.items())


# -- the table ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    label: str
    checks: str
    seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    result: str = ""
    note: str = ""  # why there are no figures


def format_table(rows: list[Row], frames: int) -> str:
    """One markdown table: frames/s, us/frame, ratio to the baseline of the same run, checks."""
    lines = [
        "| peer | frames/s | us/frame | x ccxt baseline | checks | tops against the project's |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        if not row.seconds:
            lines.append(f"| {row.label} | - | - | - | {row.checks} | {row.note} |")
            continue
        seconds = statistics.median(row.seconds)
        ratio = statistics.median(row.ratios) if row.ratios else 1.0
        lines.append(
            f"| {row.label} | {frames / seconds:,.0f} | {seconds / frames * 1e6:.2f} | "
            f"{ratio:.2f} | {row.checks} | {row.result} |"
        )
    return "\n".join(lines)


# -- the run -----------------------------------------------------------------------------------


def start(spec: PeerSpec, path: Path, frames: int) -> Runner | str:
    """The peer's runner, ready with the frames in memory; or why there is none."""
    problem = ensure_venv(spec.venv, spec.requirements)
    if problem:
        return problem
    try:
        runner = Runner(spec, path)
    except (OSError, RuntimeError, ValueError) as error:
        return f"did not start: {error}"
    if runner.frames != frames:
        runner.close()
        return f"read {runner.frames:,} frames, not {frames:,}"
    return runner


def main(frames: int = 1_000_000, runs: int = 3, seed: int = 1) -> list[Row]:
    """Every peer and the project's pipeline, each after a baseline run, `runs` rounds; print."""
    path = hot_path.recording(frames, seed)
    records = hot_path.load(path)
    received = sum(1 for record in records if "kind" not in record)
    print(f"peers: {received:,} frames ({path.name}), {runs} rounds; {load_average()}", flush=True)
    baseline = Row("ccxt baseline: `json.loads` + ccxt `OrderBook`", "none", result="-")
    project = Row(
        "this project: `Replay` (compiled core) + detection on every frame",
        "Kraken CRC32, Coinbase and Binance sequences, validation, detection",
    )
    rows = [baseline, project]
    runners: dict[int, Runner] = {}
    for number, spec in enumerate(PEERS):
        row = Row(spec.label, spec.checks)
        rows.append(row)
        started = start(spec, path, received)
        if isinstance(started, str):
            row.note = started
            print(f"  {spec.label}: {started}", flush=True)
        else:
            runners[number] = started
    truths = truth_at_checkpoints(records)
    try:
        for round_ in range(1, runs + 1):
            gc.collect()
            base = hot_path.run_baseline(records)
            gc.collect()
            seconds, replay = hot_path.run_pipeline(records)
            hot_path.check_clean(replay)
            del replay
            baseline.seconds.append(base)
            project.seconds.append(seconds)
            project.ratios.append(base / seconds)
            for number, runner in list(runners.items()):
                row = rows[2 + number]
                gc.collect()
                base = hot_path.run_baseline(records)
                baseline.seconds.append(base)
                try:
                    answer = runner.run()
                except (RuntimeError, ValueError, OSError) as error:
                    row.note = row.result = f"failed: {error}"
                    runner.close()
                    del runners[number]
                    continue
                row.seconds.append(answer["seconds"])
                row.ratios.append(base / answer["seconds"])
                fired = failures(answer["counters"])
                row.result = judge(answer["tops"], truths) + (f"; {fired}" if fired else "")
            print(f"  round {round_} done at {time.strftime('%H:%M:%S')}", flush=True)
    finally:
        for runner in runners.values():
            runner.close()
    valid = sum(1 for book in truths[-1].values() if book.get("valid"))
    project.result = f"the truth ({valid} of {len(truths[-1])} books valid at the end)"
    print(f"  {load_average()} (2 cores here)", flush=True)
    print(format_table(rows, received), flush=True)
    return rows


def load_average() -> str:
    """The machine's noise, said with the figures: other processes share these cores."""
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())
