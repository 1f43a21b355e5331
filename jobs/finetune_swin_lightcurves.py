"""Job: SwinV2 on light-curve pictures (overlay, grid, folded) vs RF, SVM and Astromer.

One command, one table (``OUT/table.md``, ``OUT/results.json``): every method on the same
object split of each seed, macro F1 mean and spread over the seeds::

    .venv/bin/python jobs/finetune_swin_lightcurves.py --out runs/swin
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray
from astroray.studies.finetune_vision import FinetuneConfig, finetune, write_finetune_results


def main(argv: list[str] | None = None) -> int:
    """Run the job; writes ``--out``/results.json, table.md, the best models and figures."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="override the seeds (each: its own object split)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    seeds = tuple(args.seeds) if args.seeds else None
    config = load_job_config(args, FinetuneConfig, after_smoke={"epochs": args.epochs,
                                                               "seeds": seeds})
    init_ray(args.address)
    summary = finetune(config, args.out)
    write_finetune_results(summary, config, args.out, "finetune_swin_lightcurves", smoke=args.smoke,
                           started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
