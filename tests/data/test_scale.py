"""10,000 light curves and 10,000 spectra: generated, written in survey formats, ingested through
Ray Data, validated against the schema. Prints the time per 10,000 objects (no timing asserts)."""

from __future__ import annotations

import shutil
import time
from collections import Counter

import pyarrow.parquet as pq
import pytest

from astroray.data.datasource import read_errors
from astroray.data.ingest import IngestConfig, ingest
from astroray.data.schema import validate_table
from astroray.data.synthetic import SyntheticSurveyConfig, make_survey

N = 10_000
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("kind", "fmt", "record_kind"),
    [("periodic", "csv", "lightcurve"), ("spectra", "lamost", "spectrum")],
)
def test_ten_thousand_objects_round_trip(ray_session, tmp_path, kind, fmt, record_kind):
    free = shutil.disk_usage(tmp_path).free
    if free < 4 * 1024**3:
        pytest.skip(f"needs ~2 GB of scratch space, {free / 1024**3:.1f} GB free")
    t0 = time.perf_counter()
    written = make_survey(SyntheticSurveyConfig(kind=kind, n=N, format=fmt, seed=7),
                          tmp_path / "input")
    generate_s = time.perf_counter() - t0
    assert len([p for p in written if "label" not in p.rsplit("/", 1)[-1]]) == N

    summary = ingest(IngestConfig(paths=(str(tmp_path / "input"),)), tmp_path / "out")
    print(f"\n{kind}/{fmt}: generated + written in {generate_s:.1f} s; ingested {summary.read} "
          f"in {summary.seconds:.1f} s ({summary.seconds * 1e4 / summary.read:.1f} s per 10,000)")
    assert (summary.written, summary.failed) == (N, 0)
    assert read_errors(str(tmp_path / "out" / "errors")).num_rows == 0

    data = pq.read_table(tmp_path / "out" / "data")
    validate_table(data, record_kind)
    ids = data.column("object_id").to_pylist()
    assert len(set(ids)) == N
    labels = Counter(data.column("label").to_pylist())
    assert None not in labels and len(labels) >= 3
    # Balanced classes by default: no class more than twice as common as another.
    assert max(labels.values()) <= 2 * min(labels.values())
