"""Job: pretrain an Astromer encoder (masked magnitudes) on Ray Train, fed by Ray Data."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray
from astroray.train.astromer import PretrainConfig, pretrain, write_pretrain_results


def main(argv: list[str] | None = None) -> int:
    """Run the pretraining job; writes ``--out``/results.json and ``--out``/model/."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    parser.add_argument("--fail-at-epoch", type=int, default=None,
                        help="inject one worker failure at this epoch (resume test)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, PretrainConfig,
                             after_smoke={"fail_at_epoch": args.fail_at_epoch})
    init_ray(args.address)
    summary = pretrain(config, args.out)
    write_pretrain_results(summary, config, args.out, smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
