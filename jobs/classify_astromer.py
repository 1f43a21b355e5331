"""Job: does a pretrained Astromer help? Few-shot classification, published weights vs baselines."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import job_parser, load_job_config

from astroray.runtime import init_ray, write_results
from astroray.studies.few_shot import METHODS, ClassifyConfig, classify, format_tables


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
              + ", ".join(f"{m} {row[f'{m}_f1']:.3f}+-{row[f'{m}_f1_std']:.3f}"
                          for m in METHODS if f"{m}_f1" in row))
    for row in summary["r2_table"]:
        print(f"classify: {row['dataset']} masked R^2 on test windows: {row['encoder']} "
              f"{row['r2']:.3f}")
    for method, why in summary["unavailable"].items():
        print(f"classify: {method}: skipped ({why})")
    markdown = format_tables(summary)
    Path(args.out, "table.md").write_text(markdown)
    write_results(args.out, "classify_astromer",
                  metrics={"table": summary["table"], "r2_table": summary["r2_table"],
                           "summary": summary["metrics"], "unavailable": summary["unavailable"],
                           "figures": summary["figures"], "pretrain": summary["pretrain"]},
                  data={name: {k: v for k, v in res.items() if k != "settings"}
                        for name, res in summary["datasets"].items()},
                  model={"encoders": summary["encoders"], "classifiers": {
                      name: res["classifier"]["dir"] for name, res in summary["datasets"].items()
                      if "classifier" in res}}, config=config.to_dict(),
                  smoke=args.smoke, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
