"""Job: Ray Tune sweep (ASHA) of an uncertainty method's hyperparameters."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray, write_results
from astroray.studies.tune_uncertainty import TuneUncertaintyConfig, tune_uncertainty


def main(argv: list[str] | None = None) -> int:
    """Run the sweep; writes ``--out``/results.json, trials.parquet and best.json."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    parser.add_argument("--method", default=None, help="the method to sweep (overrides)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, TuneUncertaintyConfig, method=args.method)
    init_ray(args.address)
    summary = tune_uncertainty(config, args.out)
    best = summary["best"]["metrics"]
    print(f"tune: {summary['method']} on {summary['dataset']}: {len(summary['trials'])} trials, "
          f"{summary['completed']} completed, {summary['stopped_early']} stopped early by ASHA;"
          f" best validation NLL {best['val_nll']:.3f} (macro F1 {best['val_macro_f1']:.3f}, "
          f"ECE {best['val_ece']:.3f})")
    write_results(args.out, "tune_uncertainty",
                  metrics={"trials": summary["trials"], "best": summary["best"],
                           "completed": summary["completed"],
                           "stopped_early": summary["stopped_early"],
                           "pretrain": summary["pretrain"]},
                  data={"dataset": summary["dataset"]},
                  model={"encoder": summary["encoder"], "method": summary["method"]},
                  config=config.to_dict(), smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
