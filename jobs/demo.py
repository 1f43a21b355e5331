"""Job: the astroray demo: synthetic survey + real samples -> ingest -> model -> catalogue."""

from __future__ import annotations

import sys
from pathlib import Path

from _common import job_parser

from astroray.demo import DemoConfig, run_demo
from astroray.runtime import init_ray


def main(argv: list[str] | None = None) -> int:
    """Run the demo job; writes ``--out``/results.json."""
    args = job_parser(__doc__, Path(__file__).with_suffix(".yaml")).parse_args(argv)
    config = DemoConfig.from_file(args.config)
    if args.smoke:
        config = config.smoke()
    init_ray(args.address)
    run_demo(config, args.out, smoke=args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
