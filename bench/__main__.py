"""``python -m bench run|report|compare|schema``: the harness's command line."""

from __future__ import annotations

import sys

from bench.commands import main

if __name__ == "__main__":
    sys.exit(main())
