"""The Astromer embedding batch transform, called directly and through Ray Data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from astroray.data.fileio import numpy_batch
from astroray.data.synthetic import periodic_variables
from astroray.data.windows import LightCurveWindows
from astroray.infer.astromer import AstromerEmbedder
from astroray.models import create_model
from astroray.models.astromer import read_embeddings


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny"
    create_model("astromer-tiny").save_pretrained(path)
    return str(path)


def test_object_embeddings_average_windows_and_bands(model_dir):
    table = periodic_variables(8, seed=2, n_points=(3, 500))
    batch = numpy_batch(table)
    emb = AstromerEmbedder(model_dir, min_points=5, layer_weights=[0.0, 1.0, 2.0])
    out = emb(batch)
    assert out.column("object_id").to_pylist() == list(batch["object_id"])
    layers = read_embeddings(out, "layer_embeddings")
    S, D = emb.model.num_states, emb.model.config.d_model
    assert layers.shape == (8, S, D)
    # Independent computation: window, encode, average per object.
    w = LightCurveWindows(200, min_points=5)(batch)
    means = emb.encode_windows(w)
    for i in range(8):
        rows = w["row"] == i
        if rows.any():
            np.testing.assert_allclose(layers[i], means[rows].mean(0), atol=1e-5)
        else:
            assert np.isnan(layers[i]).all()
    weights = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    ok = ~np.isnan(layers[:, 0, 0])
    np.testing.assert_allclose(read_embeddings(out, "weighted_embedding")[ok],
                               np.einsum("nsd,s->nd", layers[ok], weights), atol=1e-5)
    np.testing.assert_allclose(read_embeddings(out, "embedding")[ok], layers[ok, -1], atol=1e-6)
    assert out.column("n_windows").to_pylist() == np.bincount(w["row"], minlength=8).tolist()


def test_objects_without_windows_keep_their_row(model_dir):
    table = periodic_variables(3, seed=1, n_points=(3, 4))
    out = AstromerEmbedder(model_dir, min_points=50)(numpy_batch(table))
    assert out.num_rows == 3 and out.column("n_windows").to_pylist() == [0, 0, 0]
    assert out.column("embedding").null_count == 3


def test_random_init_keeps_the_architecture(model_dir):
    a = AstromerEmbedder(model_dir).model
    b = AstromerEmbedder(model_dir, random_init=True, seed=3).model
    assert a.config == b.config
    assert not torch.equal(a.input_proj.weight, b.input_proj.weight)
    with pytest.raises(ValueError, match="layer_weights"):
        AstromerEmbedder(model_dir, layer_weights=[1.0])


def test_embedder_as_a_ray_data_actor(ray_session, model_dir):
    table = periodic_variables(20, seed=7)
    ds = ray_session.data.from_arrow(table).map_batches(
        AstromerEmbedder, batch_format="numpy", batch_size=8,
        fn_constructor_kwargs={"model": model_dir},
        compute=ray_session.data.ActorPoolStrategy(size=1), num_cpus=0.5)
    out = pa.concat_tables(ray_session.get(ds.to_arrow_refs()))
    assert sorted(out.column("object_id").to_pylist()) == sorted(
        table.column("object_id").to_pylist())
    assert np.isfinite(read_embeddings(out, "embedding")).all()
