"""``astroray report``: one self-contained HTML page about a bulk-inference catalogue.

The page embeds its figures as PNG data URIs (nothing beside it is needed): the run's summary,
the predicted-class distribution, histograms of the winning probability per class, the
redshift distribution (regressors), agreement with known labels when the inputs carried them,
held-out scores (accuracy, macro F1, confusion matrix, reliability diagram) of labelled
objects the model never trained on, per survey and in / out of its domain, the objects
outside its domain and why, uncertainty histograms (models with an uncertainty
head), a gallery of plots for people (axes, units, bands, periodic variables phase-folded, the
predicted class in the title) of the most and least confident objects and, with an
uncertainty head, of the least certain ones, and the errors by stage with the first
messages.
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

from astroray.data.registry import read_files
from astroray.eval.plots import plot_confusion_matrix
from astroray.infer.catalogue import read_catalogue
from astroray.infer.predictors import prob_column
from astroray.infer.scoring import ScoredCatalogue, score_catalogue
from astroray.models.card import read_model_card
from astroray.render.human import plot_table
from astroray.uncertainty import expected_calibration_error, reliability_curve

__all__ = ["write_report"]


def _figure() -> tuple[Any, Any]:
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    return plt, plt.subplots(figsize=(6.4, 3.4))


def _img(fig: Any) -> str:
    import matplotlib.pyplot as plt  # lazy: matplotlib

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


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _class_plots(cat: pa.Table) -> list[str]:
    """Predicted classes and confidence of every object: in and out of the model's domain."""
    out = []
    pred = _column(cat, "predicted_class")
    prob = _column(cat, "predicted_prob")
    if pred is None or prob is None or not len(pred):
        return out
    dom = _column(cat, "in_domain")
    groups = {"all objects": np.ones(len(pred), bool)}
    if dom is not None:
        groups = {"in domain": np.array([v is True for v in dom], bool),
                  "out of domain": np.array([v is False for v in dom], bool)}
    classes = sorted(set(pred.tolist()))
    plt, (fig, ax) = _figure()
    bottom = np.zeros(len(classes))
    for (name, mask), colour in zip(groups.items(), ("#4c72b0", "#dd8452"), strict=False):
        counts = Counter(pred[mask].tolist())
        heights = np.array([counts[c] for c in classes], float)
        ax.bar(classes, heights, bottom=bottom, color=colour, label=name)
        bottom += heights
    ax.set_ylabel("objects")
    ax.set_title("Predicted classes")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=7)
    out.append("<h2>Predicted classes</h2>" + _img(fig))
    plt, (fig, ax) = _figure()
    bins = np.linspace(0, 1, 21)
    for c in classes:
        ax.hist(prob[pred == c].astype(float), bins=bins, histtype="step", linewidth=1.5,
                label=c)
    ax.set_xlabel("probability of the predicted class")
    ax.set_ylabel("objects")
    ax.legend(fontsize=7, ncols=2)
    out.append("<h2>Confidence</h2>" + _img(fig))
    return out


def _domain_section(cat: pa.Table, scored: ScoredCatalogue) -> list[str]:
    """How many objects lie outside the model's domain, per survey and by reason."""
    dom = _column(cat, "in_domain")
    if dom is None:
        return ["<h2>Domain</h2><p>The model has no model card: objects are not checked "
                "against what it was trained on (no <code>in_domain</code> column).</p>"]
    surveys = _column(cat, "survey")
    rows = []
    for s in sorted(set(surveys.tolist())):
        sel = surveys == s
        rows.append([s, int(sel.sum()), int(sum(1 for v in dom[sel] if v is True)),
                     int(sum(1 for v in dom[sel] if v is False))])
    why = _column(cat, "ood_reason")
    reasons = Counter(str(r).split(" (")[0] for r in (why if why is not None else [])
                      if r is not None)
    out = ["<h2>Domain</h2><p>An object is in the model's domain when its survey and bands "
           "are the training data's, its cadence and length are within the training range, and "
           "the classifier is confident (model card).</p>",
           _table(["survey", "objects", "in domain", "out of domain"], rows)]
    if reasons:
        out.append(_table(["reason (out of domain)", "objects"],
                          [[k, v] for k, v in reasons.most_common()]))
    if scored.foreign:
        out.append("<p>Labelled objects of classes the model does not know (they cannot be "
                   "classified right; the flag should catch them):</p>")
        out.append(_table(["label", "objects", "flagged out of domain"],
                          [[k, v["objects"], v["flagged"]] for k, v in scored.foreign.items()]))
    return out


def _scores_section(scored: ScoredCatalogue, out_png: Path) -> list[str]:
    """Accuracy, macro F1, confusion matrix and reliability of held-out objects only."""
    out = ["<h2>Held-out scores</h2>"]
    if scored.card_metrics:
        m = scored.card_metrics
        out.append(f"<p>Model card: macro F1 {_fmt(m.get('macro_f1'))}, accuracy "
                   f"{_fmt(m.get('accuracy'))} on the {m.get('objects')} objects of its test "
                   "split (never trained on).</p>")
    if not scored.scored:
        out.append(f"<p>Catalogue objects are not scored: {html.escape(scored.why_not or '')}"
                   ".</p>")
    if scored.left_out:
        out.append("<p>Labelled objects left out of the scores:</p>" + _table(
            ["reason", "objects"], [[k, v] for k, v in scored.left_out.items()]))
    if not scored.scored or scored.held_out is None or not scored.held_out.num_rows:
        return out
    overall = scored.metrics["all"]
    out.append(f"<p>{overall['objects']} labelled objects the model never saw: accuracy "
               f"{_fmt(overall['accuracy'])}, macro F1 {_fmt(overall['macro_f1'])} (over the "
               f"classes present: {', '.join(overall['classes'])}).</p>")
    rows = [[f"survey {k}", v["objects"], v["accuracy"], v["macro_f1"]]
            for k, v in scored.metrics["survey"].items()]
    rows += [[k, v["objects"], v["accuracy"], v["macro_f1"]]
             for k, v in scored.metrics.get("domain", {}).items()]
    out.append(_table(["held-out subset", "objects", "accuracy", "macro F1"], rows))

    png = plot_confusion_matrix(overall["confusion"], scored.classes, out_png,
                                title="held-out objects")
    if png is not None:
        data = base64.b64encode(Path(png).read_bytes()).decode()
        out.append(f"<h3>Confusion matrix</h3><p>{html.escape(Path(png).name)} (rows true, "
                   f"columns predicted)</p><img alt='confusion matrix' "
                   f"src='data:image/png;base64,{data}'>")
    out += _reliability(scored.held_out, scored.classes)
    return out


def _reliability(cat: pa.Table, model_classes: list[str]) -> list[str]:
    """Reliability diagram of held-out labelled objects (accuracy vs confidence)."""
    columns = [_column(cat, prob_column(c)) for c in model_classes]
    labels = _column(cat, "label")
    if any(c is None for c in columns) or labels is None or cat.num_rows < 10:
        return []
    probs = np.stack(columns, axis=1).astype(np.float64)  # (n, C)
    y = np.array([model_classes.index(v) for v in labels])
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
    return [f"<h2>Reliability</h2><p>Held-out labelled objects only ({cat.num_rows}); "
            f"expected calibration error {ece:.3f}.</p>" + _img(fig)]


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
    """Plots for people of the n most and n least confident objects (and least certain).

    Axes with units, bands in colour, periodic variables folded (catalogue or Lomb-Scargle
    period), the predicted class and probability in the title
    (:func:`astroray.render.human.plot_table`).
    """
    prob = _column(cat, "predicted_prob")
    if prob is None or n <= 0 or not len(prob) or kind not in ("lightcurve", "spectrum"):
        return []
    prob = prob.astype(np.float64)
    order = np.argsort(prob, kind="stable")
    picks = {"most confident": order[::-1][:n], "least confident": order[:n]}
    for column, title in _UNCERTAINTY[:2]:  # with an uncertainty head: the least certain
        score = _column(cat, column)
        if score is not None:
            picks[f"least certain ({title})"] = np.argsort(-score.astype(np.float64),
                                                           kind="stable")[:n]
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
        cells = []
        for oid, png in plot_table(data.take(pa.array([index[i] for i in found])), kind,
                                   predictions=sub):
            encoded = base64.b64encode(png).decode()
            cells.append(f'<figure><img alt="{html.escape(oid)}" '
                         f'src="data:image/png;base64,{encoded}"></figure>')
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
    card = read_model_card(manifest["model"]) if Path(manifest.get("model", "")).is_dir() \
        else None
    if card:
        data = card.get("training_data") or {}
        facts["trained on"] = (", ".join(f"{k} ({v})" for k, v in (data.get("surveys") or {})
                                         .items()) + f"; bands {','.join(data.get('bands', []))}")
        facts["classes"] = ", ".join(card.get("classes") or [])
        facts["encoder"] = (card.get("encoder") or {}).get("source")
    parts = ["<h1>astroray catalogue report</h1>", "<table>" + "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in facts.items()) + "</table>"]
    out = Path(out)
    scored = score_catalogue(cat, manifest.get("model", ""))
    if scored.classes:
        parts += _scores_section(scored, out.with_name(out.stem + "_confusion.png"))
        parts += _domain_section(cat, scored)
    parts += _class_plots(cat)
    parts += _uncertainty_plots(cat)
    parts += _redshift_plot(cat)
    parts += _gallery(cat, manifest.get("kind", "lightcurve"), gallery)
    parts += _errors(err)
    style = ("body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
             "padding:3px 8px;text-align:left;font-size:13px}.gallery{display:flex;"
             "flex-wrap:wrap;gap:8px}figure{margin:0;font-size:11px;text-align:center}"
             "figure img{width:320px;border:1px solid #ddd}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>astroray report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    # The figures behind the page, for scripts (and for tests that check what was scored).
    out.with_suffix(".json").write_text(json.dumps(
        {"catalogue": str(run_dir), "model": manifest.get("model"), "objects": cat.num_rows,
         "failed": err.num_rows, **scored.to_dict()}, indent=2, default=str))
    return out
