"""Instructions per frame by callgrind: the pipeline against the ccxt baseline, load-independent.

`python -m bench.callgrind` runs one process per variant under `valgrind --tool=callgrind` on
the generated 20,000-frame file (bench/hot_path.py's generator, seed 1, cached under var/bench),
subtracts a process that only loads the records and imports what the others do, and prints
instructions per received frame and the ratio to the baseline. `--frames`, `--variants` and
`--keep DIR` (keep each run's callgrind output, for `callgrind_annotate`) change the defaults.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django

VARIANTS = ("load", "baseline", "pipeline", "feeds", "reference")
DEFAULT = ("load", "baseline", "pipeline", "feeds")


def run_variant(variant: str, frames: int) -> None:
    """In the measured process: load the records, then run `variant` once over them."""
    from ccxt.async_support.base.ws.order_book import OrderBook  # noqa: F401 (the baseline's)

    from bench import hot_path
    from markets import core

    records = hot_path.load(hot_path.recording(frames, seed=1))
    if variant == "baseline":
        hot_path.run_baseline(records)
    elif variant in ("pipeline", "feeds"):
        hot_path.check_clean(hot_path.run_pipeline(records, detect=variant == "pipeline")[1])
    elif variant == "reference":
        hot_path.check_clean(hot_path.run_pipeline(records, on=core.REFERENCE)[1])
    # (os._exit: the interpreter's teardown of 20,000 records is no variant's work)
    sys.stdout.flush()
    os._exit(0)


def instructions(out: Path) -> int:
    """The total instruction count of one callgrind output file."""
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(match.group(1))


def measure(variants: tuple[str, ...], frames: int, keep: Path) -> dict[str, int]:
    """Run each variant under callgrind, two at a time; return their instruction totals."""
    running = {}
    totals = {}
    pending = list(variants)
    while pending or running:
        while pending and len(running) < 2:
            variant = pending.pop(0)
            out = keep / f"callgrind.{variant}.out"
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
            command += [sys.executable, "-m", "bench.callgrind", "--frames", str(frames)]
            command += ["--run", variant]
            running[variant] = (out, subprocess.Popen(command, stderr=subprocess.DEVNULL))
        for variant, (out, process) in list(running.items()):
            if process.poll() is None:
                continue
            del running[variant]
            if process.returncode:
                raise RuntimeError(f"{variant} exited with {process.returncode}")
            totals[variant] = instructions(out)
            print(f"  {variant}: {totals[variant]:,} instructions", flush=True)
        time.sleep(1)
    return totals


def report(totals: dict[str, int], received: int) -> None:
    load = totals["load"]
    per_frame = {name: (n - load) / received for name, n in totals.items() if name != "load"}
    base = per_frame.get("baseline")
    print(f"per received frame ({received:,} frames, minus the loading process's {load:,}):")
    for name, value in per_frame.items():
        ratio = f", {base / value:.2f}x the baseline" if base and name != "baseline" else ""
        print(f"  {name}: {value:,.0f} instructions{ratio}")
    if base:
        print(f"  (2x the baseline is {base / 2:,.0f} a frame)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.callgrind")
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--variants", default=",".join(DEFAULT), help=", ".join(VARIANTS))
    parser.add_argument("--keep", type=Path, help="directory for the callgrind outputs")
    parser.add_argument("--run", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # The simulated venues' order code imports the models: Django first.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
    django.setup()
    if args.run:
        run_variant(args.run, args.frames)
    from bench import hot_path

    variants = tuple(dict.fromkeys(("load", *args.variants.split(","))))
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"no such variant: {', '.join(sorted(unknown))}")
    path = hot_path.recording(args.frames, seed=1)  # generated here, once, outside callgrind
    received = sum(1 for record in hot_path.read_records(path) if "kind" not in record)
    print(f"callgrind on {path.name}: {', '.join(variants)}", flush=True)
    keep = args.keep or Path(tempfile.mkdtemp(prefix="callgrind-"))
    keep.mkdir(parents=True, exist_ok=True)
    report(measure(variants, args.frames, keep), received)
    print(f"outputs in {keep} (callgrind_annotate <file>)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
