"""Run every benchmark in turn and print its figures: `make bench`, or `python -m bench`."""

import os
import sys

import django


def main() -> int:
    # The simulated venues' order code imports the models: Django first.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
    django.setup()
    from bench import hot_path, live_load, reports

    hot_path.main()
    live_load.main()
    reports.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
