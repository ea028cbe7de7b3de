"""Run every benchmark in turn and print its figures: `make bench`, or `python -m bench`."""

import sys

from bench import hot_path, live_load, reports


def main() -> int:
    hot_path.main()
    live_load.main()
    reports.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
