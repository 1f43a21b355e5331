"""Job: per-object Astromer embeddings of light curves, written to Parquet by Ray Data."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.infer.astromer import EmbedConfig, embed, write_embed_results
from astroray.runtime import init_ray


def main(argv: list[str] | None = None) -> int:
    """Run the embedding job; writes ``--out``/embeddings/ and ``--out``/results.json."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    parser.add_argument("--model", default=None,
                        help="a pretrained model folder (e.g. a pretrain run's OUT/model)")
    parser.add_argument("paths", nargs="*", help="input files/folders (default: the config's)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, EmbedConfig, paths=args.paths, model=args.model)
    init_ray(args.address)
    summary = embed(config, args.out)
    write_embed_results(summary, config, args.out, smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
