"""Job: real/bogus domain adaptation (source-only, fine-tuning, MME) between two surveys."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray, write_results
from astroray.studies.domain import DomainAdaptConfig, domain_adapt


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; writes ``--out``/results.json, domain_adapt.md and the models."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, DomainAdaptConfig)
    init_ray(args.address)
    summary = domain_adapt(config, args.out)
    print(summary["markdown"])
    write_results(args.out, "domain_adapt",
                  metrics={"table": summary["table"], "runs": summary["runs"],
                           "real": summary["real"]},
                  data={"splits": summary["data"], "source_survey": config.source_survey,
                        "target_survey": config.target_survey,
                        "real_stamps": config.real_stamps},
                  model={"name": config.model, "models": summary["models"]},
                  config=config.to_dict(), smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
