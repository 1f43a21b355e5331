"""Ingest throughput: Ray Data ingest vs a plain in-process loop over the same files.

Builds a survey of N light-curve files (and N/4 spectra) by generating a synthetic survey, or
with ``--source real`` by replicating the real samples under new object ids, then reads it
(1) with a plain Python loop (``astroray.read_files``, one process) and (2) with
``astroray.data.ingest`` on a local Ray, writing Parquet. Prints objects per second for each
and their ratio; the last line is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"


def _replicate_real(folder: Path, n: int) -> tuple[Path, Path]:
    """n RR Lyrae CSVs and n/4 LAMOST spectra, copied under new names from the real samples."""
    lcs = folder / "lightcurves" / "light-curves"
    lcs.mkdir(parents=True)
    sources = sorted((REAL / "rrlyrae_stripe82" / "light-curves").glob("*.csv"))
    for i in range(n):
        shutil.copyfile(sources[i % len(sources)], lcs / f"{1_000_000 + i}.csv")
    spectra = folder / "spectra"
    spectra.mkdir()
    lamost = sorted((REAL / "lamost").glob("*.fits*"))
    for i in range(max(1, n // 4)):
        src = lamost[i % len(lamost)]
        shutil.copyfile(src, spectra / f"spec-{i:06d}{''.join(src.suffixes)}")
    return folder / "lightcurves", spectra


def _synthetic(folder: Path, n: int) -> tuple[Path, Path]:
    from astroray.data.synthetic import SyntheticSurveyConfig, make_survey

    make_survey(SyntheticSurveyConfig(kind="periodic", n=n, format="csv", seed=1),
                folder / "lightcurves")
    make_survey(SyntheticSurveyConfig(kind="spectra", n=max(1, n // 4), format="sdss", seed=2),
                folder / "spectra")
    return folder / "lightcurves", folder / "spectra"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="light curves (spectra: n/4)")
    parser.add_argument("--source", choices=["synthetic", "real"], default="synthetic")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count())
    args = parser.parse_args()

    from astroray.data.ingest import IngestConfig, ingest
    from astroray.data.registry import read_files
    from astroray.runtime import init_ray

    work = Path(tempfile.mkdtemp(prefix="astroray-bench-ingest-"))
    try:
        t0 = time.perf_counter()
        if args.source == "real":
            lcs, spectra = _replicate_real(work / "input", args.n)
        else:
            lcs, spectra = _synthetic(work / "input", args.n)
        figures: dict[str, float | int | str] = {
            "n_light_curves": args.n, "source": args.source, "num_cpus": args.num_cpus,
            "generate_seconds": round(time.perf_counter() - t0, 2),
        }
        for name, path in (("lightcurves", lcs), ("spectra", spectra)):
            t0 = time.perf_counter()
            data, errors = read_files(str(path))
            loop_s = time.perf_counter() - t0
            n = data.num_rows + errors.num_rows
            figures[f"{name}_objects"] = n
            figures[f"{name}_loop_per_s"] = round(n / loop_s, 1)
            print(f"{name}: plain loop   {n} objects in {loop_s:.1f} s ({n / loop_s:.0f}/s)")

        init_ray(num_cpus=args.num_cpus)
        for name, path in (("lightcurves", lcs), ("spectra", spectra)):
            # First run: includes starting Ray's worker processes (imports); second: steady.
            for run in ("cold", "warm"):
                summary = ingest(IngestConfig(paths=(str(path),)), work / f"out-{name}")
                rate = summary.read / summary.seconds
                ratio = round(rate / figures[f"{name}_loop_per_s"], 2)
                figures[f"{name}_ray_{run}_per_s"] = round(rate, 1)
                figures[f"{name}_ray_{run}_seconds_per_10k"] = round(
                    summary.seconds * 1e4 / summary.read, 1)
                figures[f"{name}_ratio_ray_{run}_vs_loop"] = ratio
                print(f"{name}: Ray ingest ({run}) {summary.read} objects in "
                      f"{summary.seconds:.1f} s ({rate:.0f}/s, incl. planning and Parquet "
                      f"write), x{ratio} vs loop")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
