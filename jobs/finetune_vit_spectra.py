"""Job: fine-tune a ViT on spectra rendered on the fly (class, subclass or redshift) vs SVM/RF."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray
from astroray.studies.finetune_vision import FinetuneConfig, finetune, write_finetune_results


def main(argv: list[str] | None = None) -> int:
    """Run the job; writes ``--out``/results.json, the best models and the figures."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    parser.add_argument("--task", choices=("class", "subclass", "redshift"), default=None,
                        help="override the config's task")
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, FinetuneConfig, task=args.task,
                             after_smoke={"epochs": args.epochs})
    init_ray(args.address)
    summary = finetune(config, args.out)
    write_finetune_results(summary, config, args.out, "finetune_vit_spectra", smoke=args.smoke,
                           started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
