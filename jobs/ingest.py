"""Job: ingest survey files (or a synthetic survey) into a canonical Parquet dataset on Ray."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser

from astroray.data.ingest import IngestConfig, ingest, prepare_inputs
from astroray.runtime import init_ray, write_results


def main(argv: list[str] | None = None) -> int:
    """Run the ingest job; writes ``--out``/results.json."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    parser.add_argument("paths", nargs="*", help="input files/folders (default: the config's)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = IngestConfig.from_file(args.config)
    if args.paths:
        config = config.replace(paths=tuple(args.paths), synthetic=None)
    if args.smoke:
        config = config.smoke()  # the YAML's smoke: section
    out = Path(args.out)
    config = prepare_inputs(config, out / "input")
    init_ray(args.address)
    summary = ingest(config, out / "dataset")
    print(summary.line())
    rate = summary.read / summary.seconds if summary.seconds else 0.0
    write_results(out, "ingest",
                  metrics={**summary.to_dict(), "objects_per_second": rate},
                  data={"inputs": list(config.paths), "synthetic": config.synthetic and
                        config.synthetic.to_dict(), "dataset": str(out / "dataset")},
                  model=None, config=config.to_dict(), smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
