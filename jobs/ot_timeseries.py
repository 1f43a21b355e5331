"""Job: supernova spectral time series by optimal-transport vs linear interpolation."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray, write_results
from astroray.studies.ot_timeseries import OTTimeSeriesConfig, run_ot_timeseries


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; writes ``--out``/results.json, table.md and ot_timeseries.png."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, OTTimeSeriesConfig)
    init_ray(args.address)
    summary = run_ot_timeseries(config, args.out)
    print(Path(summary["markdown"]).read_text())
    print(f"ot_timeseries: {summary['counts']}; skipped bands {summary['bands'].get('skipped')}")
    write_results(args.out, "ot_timeseries",
                  metrics={"table": summary["table"], "counts": summary["counts"],
                           "uncertainty_spearman": summary["uncertainty_spearman"],
                           "markdown": summary["markdown"], "figure": summary["figure"],
                           "errors": summary["errors"]},
                  data={**summary["data"], "bands": summary["bands"],
                        "points": summary["points"]},
                  model={"methods": list(config.methods), "reg": config.reg,
                         "n_bins": config.n_bins},
                  config=config.to_dict(), smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
