"""Job: labelling bias of galaxy morphologies: L and accuracy of labels, naive, de-biased CNNs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray, write_results
from astroray.studies.debias import DebiasConfig, run_debias


def main(argv: list[str] | None = None) -> int:
    """Run the study; writes ``--out``/results.json, debias_table.md, the figure, the models."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, DebiasConfig)
    init_ray(args.address)
    summary = run_debias(config, args.out)
    for row in summary["table"]:
        print(f"debias: {row['row']:16s} accuracy {row['accuracy']:.3f}  L {row['L']:.3f} "
              f"(z {row['L_z']:.3f}, psf {row['L_psf']:.3f})  featured "
              f"{row['featured_fraction']:.3f}"
              + (f"  L bootstrap {row['L_boot_mean']:.3f} +- {row['L_boot_std']:.3f}"
                 if "L_boot_mean" in row else ""))
    if summary["figure"] is None:
        print("debias: matplotlib is not installed: no figure")
    write_results(args.out, "debias",
                  metrics={"table": summary["table"], "figure": summary["figure"],
                           "markdown": summary["markdown"], "training": summary["training"]},
                  data=summary["data"], model={"models": summary["models"],
                                               "name": config.model},
                  config=config.to_dict(), smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
