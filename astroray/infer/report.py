"""``astroray report``: one self-contained HTML page about a bulk-inference catalogue.

The page embeds its figures as PNG data URIs (nothing beside it is needed): the run's summary,
the predicted-class distribution, histograms of the winning probability per class, the
redshift distribution (regressors), agreement with known labels when the inputs carried them,
a reliability diagram (labelled inputs), uncertainty histograms (models with an uncertainty
head), a gallery of the rendered inputs of the most and least confident objects and, with an
uncertainty head, of the least certain ones (drawn with our renderer, as the models see
them), and the errors by stage with the first messages.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.infer.catalogue import read_catalogue

__all__ = ["write_report"]


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(6.4, 3.4))


def _img(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=96)
    plt.close(fig)
    return (f'<img alt="figure" src="data:image/png;base64,'
            f'{base64.b64encode(buf.getvalue()).decode()}">')


def _column(table: pa.Table, name: str) -> np.ndarray | None:
    if name not in table.column_names:
        return None
    return table.column(name).to_numpy(zero_copy_only=False)


def _class_plots(cat: pa.Table, model_classes: list[str]) -> list[str]:
    out = []
    pred = _column(cat, "predicted_class")
    prob = _column(cat, "predicted_prob")
    if pred is None or prob is None or not len(pred):
        return out
    counts = Counter(pred.tolist())
    classes = sorted(counts)
    plt, (fig, ax) = _figure()
    ax.bar(classes, [counts[c] for c in classes], color="#4c72b0")
    ax.set_ylabel("objects")
    ax.set_title("Predicted classes")
    ax.tick_params(axis="x", rotation=30)
    out.append("<h2>Predicted classes</h2>" + _img(fig))
    plt, (fig, ax) = _figure()
    bins = np.linspace(0, 1, 21)
    for c in classes:
        ax.hist(prob[pred == c], bins=bins, histtype="step", linewidth=1.5, label=c)
    ax.set_xlabel("probability of the predicted class")
    ax.set_ylabel("objects")
    ax.legend(fontsize=7, ncols=2)
    out.append("<h2>Confidence</h2>" + _img(fig))
    labels = _column(cat, "label")
    if labels is not None:
        known = np.array([v is not None and v in model_classes for v in labels], dtype=bool)
        if known.any():
            acc = float((labels[known] == pred[known]).mean())
            out.append(f"<p>{int(known.sum())} object(s) carry a known label among the model's "
                       f"classes: accuracy {acc:.3f}.</p>")
            out += _reliability(cat, model_classes, labels, known)
    out += _uncertainty_plots(cat)
    return out


def _reliability(cat: pa.Table, model_classes: list[str], labels: np.ndarray,
                 known: np.ndarray) -> list[str]:
    """Reliability diagram of the objects with a known label (accuracy vs confidence)."""
    from astroray.infer.predictors import prob_column
    from astroray.uncertainty import expected_calibration_error, reliability_curve

    columns = [_column(cat, prob_column(c)) for c in model_classes]
    if any(c is None for c in columns) or known.sum() < 10:
        return []
    probs = np.stack(columns, axis=1)[known].astype(np.float64)  # (n, C)
    y = np.array([model_classes.index(v) for v in labels[known]])
    curve = reliability_curve(y, probs, n_bins=10)
    used = curve["count"] > 0
    plt, (fig, ax) = _figure()
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    ax.plot(curve["confidence"][used], curve["accuracy"][used], marker="o", color="#c44e52")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy")
    ece = expected_calibration_error(y, probs, n_bins=10)
    return [f"<h2>Reliability</h2><p>Objects with a known label; expected calibration error "
            f"{ece:.3f}.</p>" + _img(fig)]


_UNCERTAINTY = (("uncertainty_bald", "BALD (mutual information)"),
                ("uncertainty_pv", "probability variance (PV)"),
                ("uncertainty_smp", "1 - sampled maximum probability (SMP)"))


def _uncertainty_plots(cat: pa.Table) -> list[str]:
    """Histograms of the uncertainty scores, when the model has an uncertainty head."""
    present = [(c, t) for c, t in _UNCERTAINTY if _column(cat, c) is not None]
    if not present or not cat.num_rows:
        return []
    out = ["<h2>Uncertainty</h2>"]
    for column, title in present:
        plt, (fig, ax) = _figure()
        values = _column(cat, column).astype(np.float64)
        ax.hist(values[np.isfinite(values)], bins=40, color="#8172b2")
        ax.set_xlabel(title)
        ax.set_ylabel("objects")
        out.append(_img(fig))
    return out


def _redshift_plot(cat: pa.Table) -> list[str]:
    for name in ("redshift", "z_pred"):
        z = _column(cat, name)
        if z is not None and len(z):
            plt, (fig, ax) = _figure()
            ax.hist(z[np.isfinite(z)], bins=40, color="#55a868")
            ax.set_xlabel("predicted redshift")
            ax.set_ylabel("objects")
            return ["<h2>Redshifts</h2>" + _img(fig)]
    return []


def _gallery(cat: pa.Table, kind: str, n: int) -> list[str]:
    """Rendered inputs of the n most and n least confident objects."""
    from astroray.data.registry import read_files
    from astroray.render import encode_png, render_table

    prob = _column(cat, "predicted_prob")
    if prob is None or n <= 0 or not len(prob):
        return []
    order = np.argsort(prob, kind="stable")
    picks = {"most confident": order[::-1][:n], "least confident": order[:n]}
    for column, title in _UNCERTAINTY[:2]:  # with an uncertainty head: the least certain
        score = _column(cat, column)
        if score is not None:
            picks[f"least certain ({title})"] = np.argsort(-score, kind="stable")[:n]
            break
    out = ["<h2>Gallery</h2>"]
    for title, rows in picks.items():
        sub = cat.take(pa.array(rows))
        ids = sub.column("object_id").to_pylist()
        sources = sorted(set(s for s in sub.column("source").to_pylist() if s))
        try:
            data, _ = read_files(sources, kind=kind)
        except Exception as exc:  # inputs moved or deleted since the run: say so, go on
            out.append(f"<p>{title}: inputs not readable ({html.escape(str(exc))})</p>")
            continue
        index = {oid: i for i, oid in enumerate(data.column("object_id").to_pylist())}
        found = [i for i in ids if i in index]
        if not found:
            continue
        images = render_table(data.take(pa.array([index[i] for i in found])), kind)
        cells = []
        by_id = {r["object_id"]: r for r in sub.to_pylist()}
        for oid, image in zip(found, images.numpy(), strict=True):
            row = by_id[oid]
            hwc = image.transpose(1, 2, 0) if image.shape[0] in (3, 4) else image[0]  # CHW -> HWC
            png = base64.b64encode(encode_png(np.ascontiguousarray(hwc))).decode()
            cells.append(f'<figure><img alt="{html.escape(oid)}" '
                         f'src="data:image/png;base64,{png}"><figcaption>'
                         f"{html.escape(oid)}<br>{html.escape(str(row.get('predicted_class')))}"
                         f" {row.get('predicted_prob', 0):.2f}</figcaption></figure>")
        out.append(f"<h3>{title}</h3><div class='gallery'>{''.join(cells)}</div>")
    return out


def _errors(err: pa.Table) -> list[str]:
    if err.num_rows == 0:
        return ["<h2>Errors</h2><p>None: every object was catalogued.</p>"]
    stages = Counter(err.column("stage").to_pylist())
    rows = "".join(f"<tr><td>{html.escape(str(s))}</td><td>{c}</td></tr>"
                   for s, c in stages.most_common())
    first = "".join(
        f"<tr><td>{html.escape(str(r['object_id']))}</td><td>{html.escape(str(r['stage']))}"
        f"</td><td>{html.escape(str(r['error']))}</td></tr>"
        for r in err.slice(0, 30).to_pylist())
    return [f"<h2>Errors</h2><table><tr><th>stage</th><th>objects</th></tr>{rows}</table>",
            f"<h3>First {min(30, err.num_rows)}</h3><table><tr><th>object</th><th>stage</th>"
            f"<th>error</th></tr>{first}</table>"]


def write_report(run_dir: str | Path, out: str | Path, *, gallery: int = 8) -> Path:
    """Write the HTML report of an ``astroray infer`` run folder; returns its path.

    Raises:
        FileNotFoundError: when ``run_dir`` holds no catalogue run.
    """
    run_dir = Path(run_dir)
    manifest_path = run_dir / "_state" / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a catalogue run folder (no _state/manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    last = run_dir / "_state" / "last.json"
    summary = json.loads(last.read_text()).get("summary", {}) if last.is_file() else {}
    cat, err = read_catalogue(run_dir)
    facts = {"model": manifest.get("model"), "model hash": manifest.get("model_hash"),
             "input kind": manifest.get("kind"), "catalogued objects": cat.num_rows,
             "failed objects": err.num_rows,
             "last run": f"{summary.get('seconds', '?')} s, "
                         f"{summary.get('shards', '?')} shard(s)"}
    parts = ["<h1>astroray catalogue report</h1>", "<table>" + "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in facts.items()) + "</table>"]
    try:
        from astroray.models._pretrained import read_config_json

        model_classes = list(read_config_json(manifest["model"]).get("labels") or [])
    except (OSError, KeyError, ValueError):
        model_classes = []
    parts += _class_plots(cat, model_classes)
    parts += _redshift_plot(cat)
    parts += _gallery(cat, manifest.get("kind", "lightcurve"), gallery)
    parts += _errors(err)
    style = ("body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
             "padding:3px 8px;text-align:left;font-size:13px}.gallery{display:flex;"
             "flex-wrap:wrap;gap:8px}figure{margin:0;font-size:11px;text-align:center}"
             "figure img{width:160px;border:1px solid #ddd}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>astroray report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out
