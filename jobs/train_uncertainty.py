"""Job: uncertainty of the Astromer classifier (MC Dropout, HSA, HA-MC Dropout, ensembles)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray, write_results
from astroray.studies.uncertainty import UncertaintyConfig, train_uncertainty


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; writes ``--out``/results.json and reliability diagrams."""
    parser = job_parser(__doc__, Path(__file__).with_suffix(".yaml"))
    parser.add_argument("--encoder", default=None,
                        help="a pretrained model folder (default: pretrain one first)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_job_config(args, UncertaintyConfig, encoder=args.encoder)
    init_ray(args.address)
    summary = train_uncertainty(config, args.out)
    for row in summary["table"]:
        if "skipped" in row:
            print(f"uncertainty: {row['dataset']}: skipped ({row['skipped']})")
            continue
        print(f"uncertainty: {row['dataset']} {row['method']:14s} macro F1 "
              f"{row['macro_f1']:.3f}+-{row['macro_f1_std']:.3f}  ROC-AUC SMP "
              f"{row['auroc_smp']:.3f} PV {row['auroc_pv']:.3f} BALD {row['auroc_bald']:.3f}"
              f"  ECE {row['ece']:.3f}  cost x{row['cost_ratio']:.1f}")
    write_results(args.out, "train_uncertainty",
                  metrics={"table": summary["table"], "pretrain": summary["pretrain"],
                           "figures": {k: v.get("figure") for k, v in
                                       summary["datasets"].items()}},
                  data={name: {k: v for k, v in res.items() if k != "methods"}
                        for name, res in summary["datasets"].items()},
                  model={"encoder": summary["encoder"]}, config=config.to_dict(),
                  smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
