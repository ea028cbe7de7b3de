"""Run every benchmark in turn and print its figures: `make bench`, or `python -m bench`.

`python -m bench peers` (or `hot_path`, `live_load`, `daphne_floor`, `reports`) runs those parts
alone, and `--frames N` sets the recording's size for the hot path and the peers (default
1,000,000), `--runs N` their rounds (default 3).
"""

import argparse
import os
import sys

import django

PARTS = ("hot_path", "peers", "live_load", "daphne_floor", "reports")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("parts", nargs="*", metavar="part", help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="rounds, whose medians are given")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"no such part: {', '.join(unknown)} (choose from {', '.join(PARTS)})")
    # The simulated venues' order code imports the models: Django first.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
    django.setup()
    from bench import daphne_floor, hot_path, live_load, peers, reports

    for part in args.parts or PARTS:
        if part == "hot_path":
            hot_path.main(frames=args.frames, runs=args.runs)
        elif part == "peers":
            peers.main(frames=args.frames, runs=args.runs)
        elif part == "live_load":
            live_load.main()
        elif part == "daphne_floor":
            daphne_floor.main()
        else:
            reports.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
