"""Job: few-shot classification on Astromer embeddings vs an untrained encoder and a GRU."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray, write_results
from astroray.train.classify import ClassifyConfig, classify


def main(argv: list[str] | None = None) -> int:
    """Run the classification job; writes ``--out``/results.json and confusion PNGs."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    parser.add_argument("--encoder", default=None,
                        help="a pretrained model folder (default: pretrain one first)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, ClassifyConfig, encoder=args.encoder)
    init_ray(args.address)
    summary = classify(config, args.out)
    for row in summary["table"]:
        if "skipped" in row:
            print(f"classify: {row['dataset']} n={row['samples_per_class']}: skipped "
                  f"({row['skipped']})")
            continue
        print(f"classify: {row['dataset']} n={row['samples_per_class']}/class macro F1: "
              f"astromer {row['astromer_f1']:.3f}+-{row['astromer_f1_std']:.3f}, "
              f"untrained encoder {row['astromer_random_f1']:.3f}+-"
              f"{row['astromer_random_f1_std']:.3f}, GRU {row['gru_f1']:.3f}+-"
              f"{row['gru_f1_std']:.3f}")
    write_results(args.out, "classify_astromer",
                  metrics={"table": summary["table"], "summary": summary["metrics"],
                           "figures": summary["figures"], "pretrain": summary["pretrain"]},
                  data={name: {k: v for k, v in res.items() if k != "settings"}
                        for name, res in summary["datasets"].items()},
                  model={"encoder": summary["encoder"], "classifiers": {
                      name: res["classifier"]["dir"] for name, res in summary["datasets"].items()
                      if "classifier" in res}}, config=config.to_dict(),
                  smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
