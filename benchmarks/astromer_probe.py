"""What pretraining adds to frozen Astromer embeddings: a linear probe, pretrained vs untrained.

For each encoder folder given, the labelled synthetic MACHO-like survey (6 classes) is
embedded twice in this process: with the pretrained weights and with a random initialisation
of the same configuration (its ``value_scale`` included). A logistic regression (z-scored
features, scikit-learn) is then fitted on the per-object masked time-mean of each block's
output, with ``--per-class`` objects per class over ``--folds`` draws, and scored by macro F1
on a fixed test set. The ratio pretrained / untrained is what pretraining contributed.

A linear probe is the standard check of frozen representations. It is cheaper and less
noisy than the MLP of ``jobs/classify_astromer.py``, so it suits comparing encoders.

    python benchmarks/astromer_probe.py --encoder runs/a1/model --encoder runs/a1_s5/model
    python benchmarks/astromer_probe.py --encoder astromer-tiny --objects-per-class 60  # quick

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _survey(objects_per_class: int, seed: int):
    from astroray.data.synthetic import PERIODIC_CLASSES, periodic_variables

    n = objects_per_class * len(PERIODIC_CLASSES)
    table = periodic_variables(n, seed=seed, survey="macho")
    labels = table.column("label").to_pylist()
    classes = sorted(set(labels))
    return table, np.array([classes.index(v) for v in labels]), classes


def _layer_means(model: str, table, *, random_init: bool, seed: int) -> np.ndarray:
    """Per-object masked time-means of every representation, (N, S, D)."""
    from astroray.data.files import numpy_batch

    from astroray.infer.astromer import AstromerEmbedder
    from astroray.models.astromer import read_embeddings

    embedder = AstromerEmbedder(model, random_init=random_init, seed=seed, min_points=5,
                                device="cpu")
    batch = numpy_batch(table)
    parts = []
    for lo in range(0, table.num_rows, 256):
        out = embedder({k: v[lo:lo + 256] for k, v in batch.items()})
        index = {o: i for i, o in enumerate(out.column("object_id").to_pylist())}
        feats = read_embeddings(out, "layer_embeddings")
        ids = table.column("object_id").to_pylist()[lo:lo + 256]
        # Objects without windows (too few points) get zeros: the probe sees them as such.
        rows = [feats[index[o]] if o in index else np.zeros(feats.shape[1:]) for o in ids]
        parts.append(np.stack(rows))
    return np.nan_to_num(np.concatenate(parts))


def probe(x: np.ndarray, y: np.ndarray, test: np.ndarray, pool: np.ndarray, per_class: int,
          folds: int, c: float = 0.1) -> tuple[float, float]:
    """Macro F1 (mean, std over folds) of a logistic regression on ``x`` (N, F)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from astroray.train.metrics import macro_f1

    scores = []
    for fold in range(folds):
        rng = np.random.default_rng((per_class, fold))
        train = np.concatenate([rng.permutation(pool[y[pool] == k])[:per_class]
                                for k in np.unique(y)])
        scaler = StandardScaler().fit(x[train])
        clf = LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(x[train]), y[train])
        scores.append(macro_f1(y[test], clf.predict(scaler.transform(x[test]))))
    return float(np.mean(scores)), float(np.std(scores))


def main(argv: list[str] | None = None) -> int:
    """Print the probe table; the last line is one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", action="append", required=True,
                        help="a saved Astromer folder or registry name (repeatable)")
    parser.add_argument("--objects-per-class", type=int, default=250)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--per-class", type=int, default=20, help="training objects per class")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1, help="survey seed (not pretraining's)")
    args = parser.parse_args(argv)
    if args.objects_per_class < args.test_per_class + args.per_class:
        parser.error("--objects-per-class must cover --test-per-class + --per-class")

    from astroray.models.astromer import load_encoder

    table, y, classes = _survey(args.objects_per_class, args.seed)
    rng = np.random.default_rng(0)
    test = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == k))[:args.test_per_class]
                                   for k in range(len(classes))]))
    pool = np.setdiff1d(np.arange(len(y)), test)
    rows = []
    for encoder in args.encoder:
        config = load_encoder(encoder).config
        row = {"encoder": encoder, "value_scale": config.value_scale}
        for name, random_init in (("pretrained", False), ("untrained", True)):
            means = _layer_means(encoder, table, random_init=random_init, seed=0)
            row[name] = [probe(means[:, s], y, test, pool, args.per_class, args.folds)[0]
                         for s in range(means.shape[1])]
        last = row["pretrained"][-1] / max(row["untrained"][-1], 1e-9)
        row["ratio_last_block"] = last
        rows.append(row)
        print(f"{encoder} (value_scale {config.value_scale:g}): macro F1 per representation "
              f"(input, blocks...) pretrained "
              + " ".join(f"{v:.3f}" for v in row["pretrained"]) + " | untrained "
              + " ".join(f"{v:.3f}" for v in row["untrained"])
              + f" | last block x{last:.2f}", flush=True)
    print(json.dumps({"per_class": args.per_class, "folds": args.folds,
                      "test_objects": int(test.size), "classes": classes, "encoders": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
