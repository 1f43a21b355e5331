"""Job: Ray Tune sweep (ASHA) of MME's lambda, temperature T and learning rate."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray, write_results
from astroray.studies.tune_domain import TuneDomainConfig, tune_domain


def main(argv: list[str] | None = None) -> int:
    """Run the sweep; writes ``--out``/results.json, trials.parquet and best.json."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, TuneDomainConfig)
    init_ray(args.address)
    summary = tune_domain(config, args.out)
    best = summary["best"]
    print(f"tune: MME k={summary['shots']}: {len(summary['trials'])} trials, "
          f"{summary['completed']} completed, {summary['stopped_early']} stopped early by ASHA;"
          f" best target validation BA {best['metrics']['val_target_ba']:.3f} (source "
          f"{best['metrics']['val_source_ba']:.3f}; source-only "
          f"{summary['source_only']['val_target_ba']:.3f}) with {best['params']}")
    write_results(args.out, "tune_domain",
                  metrics={"trials": summary["trials"], "best": best,
                           "completed": summary["completed"],
                           "stopped_early": summary["stopped_early"],
                           "source_only": summary["source_only"]},
                  data={"source_survey": config.base.source_survey,
                        "target_survey": config.base.target_survey, "shots": config.shots},
                  model={"name": config.base.model},
                  config=config.to_dict(), smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
