"""Job: bulk inference of survey files into a Parquet catalogue (resumable, streaming)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.infer.catalogue import InferConfig, run_job
from astroray.runtime import init_ray


def main(argv: list[str] | None = None) -> int:
    """Run bulk inference; writes ``--out``/catalogue/, errors/ and results.json."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    parser.add_argument("paths", nargs="*", help="input files/folders (default: the config's)")
    parser.add_argument("--model", default=None, help="a saved model folder")
    parser.add_argument("--files-per-shard", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--restart", action="store_true",
                        help="start the catalogue in --out over (needed when the model changed)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, InferConfig, paths=args.paths, model=args.model,
                             files_per_shard=args.files_per_shard, batch_size=args.batch_size,
                             restart=args.restart or None)
    init_ray(args.address)
    run_job(config, args.out, smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
