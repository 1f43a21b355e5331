"""Job: anomaly detection (MCDSVDD vs Deep SVDD, autoencoder, Isolation Forest, One-Class SVM)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray, write_results
from astroray.studies.anomaly import METHODS, AnomalyConfig, run_anomaly


def main(argv: list[str] | None = None) -> int:
    """Run the held-out-class protocol; writes ``--out``/results.json, tables and detectors."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    parser.add_argument("--input", default=None, choices=("features", "embeddings"),
                        help="detector inputs (default: the config's)")
    parser.add_argument("--encoder", default=None,
                        help="an Astromer folder for --input embeddings")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, AnomalyConfig, input=args.input, encoder=args.encoder)
    init_ray(args.address)
    summary = run_anomaly(config, args.out)
    for name, table in summary["tables"].items():
        print(f"anomaly: {name}: AUROC per held-out class (mean over "
              f"{table[0]['folds']} folds)")
        print("  " + f"{'held out':10s}" + "".join(f"{m:>18s}" for m in METHODS))
        for row in table:
            print("  " + f"{row['held_out']:10s}"
                  + "".join(f"{row[m]:11.3f}+-{row[m + '_std']:.3f}" for m in METHODS))
    write_results(args.out, "anomaly",
                  metrics={"tables": summary["tables"], "methods": list(METHODS),
                           "files": summary["files"]},
                  data=summary["datasets"],
                  model={"input": config.input, "encoder": summary["encoder"],
                         "hidden": list(config.hidden), "latent_dim": config.latent_dim,
                         "detectors": summary["detectors"]},
                  config=config.to_dict(), smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
