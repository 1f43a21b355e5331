"""The published Astromer 1: checkpoint reader, converter, official encoder, name lookup.

The equivalence with the authors' TensorFlow encoder is checked against a fixture the official
code made (``tests/fixtures/astromer1_official/reference.npz``; how: ``make_reference.py``
beside it). A numpy forward pass written from the official Keras code, on the checkpoint's
own arrays, checks the converter's mapping and the +1-logit quirk independently.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from astroray.models import create_model, list_published, load_model
from astroray.models._tf_checkpoint import CheckpointError, TFCheckpoint, crc32c
from astroray.models.astromer import Astromer
from astroray.models.astromer.convert import ConversionError, convert_astromer1

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT.parent / "shared" / "data" / "weights" / "astromer1-macho"
FIXTURE = ROOT / "tests" / "fixtures" / "astromer1_official" / "reference.npz"
needs_weights = pytest.mark.skipif(not WEIGHTS.is_dir(),
                                   reason=f"published weights not present at {WEIGHTS}")
V = "/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    if not WEIGHTS.is_dir():
        pytest.skip(f"published weights not present at {WEIGHTS}")
    return convert_astromer1(WEIGHTS, tmp_path_factory.mktemp("astromer1") / "model")


def test_crc32c_known_values():
    # RFC 3720 test vectors (iSCSI): 32 zero bytes, 32 0xff bytes, and "123456789".
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(b"123456789") == 0xE3069283


@needs_weights
def test_checkpoint_reader_lists_and_reads_every_tensor():
    ckpt = TFCheckpoint(WEIGHTS)
    keys = [k for k in ckpt.keys() if k.endswith(V)]
    assert len(keys) == 38  # input Dense, 2 x (4 MHA Dense, 2 FFN Dense, 2 LayerNorm), head
    kernel = ckpt.read(f"layer_with_weights-0/inp_transform/kernel{V}")
    assert kernel.shape == (1, 256) and kernel.dtype == np.float32
    assert ckpt.shape(f"layer_with_weights-0/enc_layers/1/ffn/layer_with_weights-0/kernel{V}") \
        == (256, 128)
    gamma = ckpt.read(f"layer_with_weights-0/enc_layers/0/layernorm1/gamma{V}")
    assert np.isfinite(gamma).all() and not np.allclose(gamma, 1.0)  # trained, not init
    with pytest.raises(KeyError, match="no tensor"):
        ckpt.read("nope")


def _copy_weights(dst: Path) -> Path:
    shutil.copytree(WEIGHTS, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst


@needs_weights
def test_bad_checkpoints_get_errors_naming_the_file(tmp_path):
    # A truncated data file.
    bad = _copy_weights(tmp_path / "truncated")
    data = bad / "weights.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: 1_000_000])
    with pytest.raises(ConversionError, match=r"weights\.data-00000-of-00001: truncated"):
        convert_astromer1(bad, tmp_path / "out1")
    # One flipped byte: the CRC32C catches it.
    flipped = _copy_weights(tmp_path / "flipped")
    data = flipped / "weights.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[500_000] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(ConversionError, match="checksum mismatch"):
        convert_astromer1(flipped, tmp_path / "out2")
    # Missing data shard, missing index, garbage index.
    missing = _copy_weights(tmp_path / "missing")
    (missing / "weights.data-00000-of-00001").unlink()
    with pytest.raises(ConversionError, match="data shard not found"):
        convert_astromer1(missing, tmp_path / "out3")
    noindex = _copy_weights(tmp_path / "noindex")
    (noindex / "weights.index").unlink()
    with pytest.raises(ConversionError, match=r"weights\.index: checkpoint index not found"):
        convert_astromer1(noindex, tmp_path / "out4")
    garbage = _copy_weights(tmp_path / "garbage")
    (garbage / "weights.index").write_bytes(b"not a table" * 10)
    with pytest.raises(CheckpointError, match="bad magic number"):
        TFCheckpoint(garbage)
    # conf.json of another architecture, missing, or not JSON.
    other = _copy_weights(tmp_path / "other")
    conf = json.loads((other / "conf.json").read_text())
    (other / "conf.json").write_text(json.dumps({**conf, "layers": 3}))
    with pytest.raises(ConversionError, match="enc_layers/2"):
        convert_astromer1(other, tmp_path / "out5")
    (other / "conf.json").write_text(json.dumps({**conf, "dff": 64}))
    with pytest.raises(ConversionError, match=r"shape \(256, 128\).*needs \(256, 64\)"):
        convert_astromer1(other, tmp_path / "out6")
    (other / "conf.json").write_text(json.dumps({**conf, "use_leak": True}))
    with pytest.raises(ConversionError, match="use_leak"):
        convert_astromer1(other, tmp_path / "out7")
    (other / "conf.json").write_text("{")
    with pytest.raises(ConversionError, match=r"conf\.json: not a JSON file"):
        convert_astromer1(other, tmp_path / "out8")
    (other / "conf.json").unlink()
    with pytest.raises(ConversionError, match=r"conf\.json not found"):
        convert_astromer1(other, tmp_path / "out9")
    with pytest.raises(ConversionError, match="no such folder"):
        convert_astromer1(tmp_path / "absent", tmp_path / "out10")
    assert not any((tmp_path / f"out{i}").exists() for i in range(1, 11))


def _numpy_official(ckpt: TFCheckpoint, times, values, mask):
    """The official encoder (astromer 0.1.8) in numpy, from the Keras arrays as stored."""
    def get(name):
        return ckpt.read(f"{name}{V}").astype(np.float64)

    def dense(x, name):
        return x @ get(f"{name}/kernel") + get(f"{name}/bias")

    def layer_norm(x, name):
        mu = x.mean(-1, keepdims=True)
        var = x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-6) * get(f"{name}/gamma") + get(f"{name}/beta")

    d, heads = 256, 4
    i = np.arange(d)
    angle = times[..., None] / (10000.0 ** (2 * i / d))
    pe = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    x = dense(values[..., None], "layer_with_weights-0/inp_transform") + pe
    off = (~mask).astype(np.float64)  # mask_in: 1 on padding
    bias = np.minimum(1.0, off[:, :, None] + off[:, None, :])[:, None]  # (B, 1, T, T)
    B, T = values.shape
    for layer in range(2):
        base = f"layer_with_weights-0/enc_layers/{layer}"
        q, k, v = (dense(x, f"{base}/mha/{n}").reshape(B, T, heads, -1).transpose(0, 2, 1, 3)
                   for n in ("wq", "wk", "wv"))
        logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // heads) + bias
        w = np.exp(logits - logits.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        att = (w @ v).transpose(0, 2, 1, 3).reshape(B, T, d)
        x = layer_norm(dense(att, f"{base}/mha/dense"), f"{base}/layernorm1")
        ff = dense(np.tanh(dense(x, f"{base}/ffn/layer_with_weights-0")),
                   f"{base}/ffn/layer_with_weights-1")
        x = layer_norm(ff, f"{base}/layernorm2")
    head = layer_norm(x, "layer_with_weights-1/bn_0")
    return x, dense(head, "layer_with_weights-1/reg_layer")[..., 0]


def _windows(seed: int = 0, B: int = 4, T: int = 200):
    rng = np.random.default_rng(seed)
    lengths = np.array([200, 150, 37, 90])[:B]
    mask = np.arange(T)[None, :] < lengths[:, None]
    t = np.cumsum(rng.uniform(0.5, 3.0, size=(B, T)), axis=1)
    v = 0.3 * np.sin(t / 7.0) + 0.05 * rng.normal(size=(B, T))
    for b in range(B):  # centred on the valid points' means, zero padded (the official loader)
        n = lengths[b]
        t[b, :n] -= t[b, :n].mean()
        v[b, :n] -= v[b, :n].mean()
    return t * mask, v * mask, mask


@needs_weights
def test_converted_model_matches_a_numpy_forward_of_the_official_code(converted):
    t, v, mask = _windows()
    ref_state, ref_pred = _numpy_official(TFCheckpoint(WEIGHTS), t, v, mask)
    model = load_model(converted).eval()
    assert isinstance(model, Astromer)
    cfg = model.config
    assert (cfg.residual, cfg.time_origin, cfg.attention_masking, cfg.pe_base) == (
        False, "mean", "plus_one", 10000.0)
    with torch.no_grad():
        out = model(torch.tensor(t, dtype=torch.float32), torch.tensor(v, dtype=torch.float32),
                    torch.tensor(mask))
    got = out.states[-1].double().numpy()
    diff = np.abs(got - ref_state)[mask]
    assert diff.mean() < 1e-3
    np.testing.assert_allclose(out.prediction.double().numpy()[mask], ref_pred[mask],
                               atol=5e-3)
    # The quirk matters: excluding padded keys (our default) moves the padded windows.
    model_ex = load_model(converted, attention_masking="exclude").eval()
    with torch.no_grad():
        ex = model_ex(torch.tensor(t, dtype=torch.float32), torch.tensor(v, dtype=torch.float32),
                      torch.tensor(mask)).states[-1].double().numpy()
    short = mask[2]
    assert np.abs(ex[2][short] - ref_state[2][short]).mean() > 10 * np.abs(
        got[2][short] - ref_state[2][short]).mean()


@pytest.mark.skipif(not FIXTURE.is_file(), reason="reference fixture not committed")
@needs_weights
def test_converted_model_matches_the_official_tensorflow_encoder(converted):
    ref = np.load(FIXTURE, allow_pickle=False)
    model = load_model(converted).eval()
    times = torch.tensor(ref["times"])
    values = torch.tensor(ref["values"])
    mask = torch.tensor(ref["mask"])
    with torch.no_grad():
        out = model(times, values, mask)
        means = torch.stack([(s * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                             for s in out.states], dim=1).numpy()  # (N, S, D)
    index = ref["last_state_index"]
    state = out.states[-1].numpy()[index]
    valid = ref["mask"][index]
    mean_abs = np.abs(state - ref["last_state"])[valid].mean()
    assert mean_abs <= 1e-3, mean_abs
    # The per-window time-means (the embedding downstream uses), every dimension within 1e-2,
    # for at least 90% of the windows, for every representation.
    close = (np.abs(means - ref["layer_means"]) <= 1e-2).all(axis=2)  # (N, S)
    assert close.mean(axis=0).min() >= 0.9, close.mean(axis=0)
    np.testing.assert_allclose(out.prediction.numpy()[ref["mask"]], ref["prediction"][ref["mask"]],
                               atol=2e-3)


def test_official_preset_init_and_time_encoding():
    torch.manual_seed(0)
    model = create_model("astromer-v1-official")
    assert model.config.pe_base == 10000.0 and not model.config.residual
    # Keras Dense: Glorot-uniform weights, zero bias (not PyTorch's +-1 for one input).
    w = model.input_proj.weight
    assert torch.all(model.input_proj.bias == 0)
    assert float(w.detach().abs().max()) <= np.sqrt(6.0 / (1 + 256)) + 1e-6
    qkv = model.blocks[0].qkv.weight
    assert float(qkv.detach().abs().max()) <= np.sqrt(6.0 / (256 + 256)) + 1e-6
    # per projection (d -> d), not the bound of one d -> 3d layer
    assert float(qkv.detach().abs().max()) > 0.8 * np.sqrt(6.0 / (256 + 256))
    # PyTorch's default init, kept as an option
    legacy = create_model("astromer-v1", init="torch")
    assert float(legacy.input_proj.bias.detach().abs().max()) > 0.5


def test_name_lookup_converts_once_into_the_cache(tmp_path, monkeypatch):
    if not WEIGHTS.is_dir():
        pytest.skip(f"published weights not present at {WEIGHTS}")
    assert "astromer1-macho" in list_published()
    monkeypatch.setenv("ASTRORAY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ASTRORAY_ASTROMER1_MACHO", str(WEIGHTS))
    model = load_model("astromer1-macho")
    folder = tmp_path / "cache" / "models" / "astromer1-macho"
    assert isinstance(model, Astromer) and (folder / "model.safetensors").is_file()
    assert json.loads((folder / "conversion.json").read_text())["tensors"] == 38
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    load_model("astromer1-macho")  # from the cache: not converted again
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    # Bulk inference and embedding take the name too (`--model astromer1-macho`).
    from astroray.infer.catalogue import InferConfig, ensure_model
    from astroray.models.astromer import load_encoder

    assert ensure_model(InferConfig(model="astromer1-macho", paths=("x",)), tmp_path)[0].model \
        == str(folder)
    assert load_encoder("astromer1-macho").config.time_origin == "mean"
    # Neither a cache nor a local copy: a clear error, no download unless asked for.
    from astroray.models.astromer import published

    monkeypatch.setenv("ASTRORAY_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("ASTRORAY_ASTROMER1_MACHO")
    monkeypatch.setattr(published, "find_source", lambda name, source=None: None)
    with pytest.raises(FileNotFoundError, match="ASTRORAY_ASTROMER1_MACHO"):
        load_model("astromer1-macho")
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        load_model(tmp_path / "typo")


def test_cli_convert(tmp_path, capsys):
    if not WEIGHTS.is_dir():
        pytest.skip(f"published weights not present at {WEIGHTS}")
    from astroray.cli import main

    assert main(["convert", "astromer1", str(WEIGHTS), "--out", str(tmp_path / "m")]) == 0
    assert "astromer1" in capsys.readouterr().out
    assert isinstance(load_model(tmp_path / "m"), Astromer)
    assert main(["convert", "astromer1", str(tmp_path / "absent"), "--out",
                 str(tmp_path / "n")]) == 2
    assert "no such folder" in capsys.readouterr().err


@pytest.mark.skipif(not FIXTURE.is_file(), reason="reference fixture not committed")
def test_windows_with_the_official_convention_match_the_official_loader():
    """Our windowing (time_origin="mean") prepares the RR Lyrae windows as the official loader.

    The official loader casts times to float32 before centring and takes their mean in float32
    (MJD ~5e4: up to ~0.01 d off, the same for every point of the window), so times agree up
    to that constant and float32 rounding; magnitudes to 1e-5.
    """
    from astroray.data.fileio import numpy_batch
    from astroray.data.registry import read_files
    from astroray.data.windows import LightCurveWindows

    ref = np.load(FIXTURE, allow_pickle=False)
    rr = np.flatnonzero(ref["source"] == "rrlyrae")
    folder = ROOT.parent / "shared" / "data" / "real" / "rrlyrae_stripe82" / "light-curves"
    if not folder.is_dir():
        pytest.skip(f"real samples not present at {folder}")
    ids = sorted(set(ref["object_id"][rr]))
    table, errors = read_files([str(folder / f"{i}.csv") for i in ids])
    assert errors.num_rows == 0
    w = LightCurveWindows(200, time_origin="mean")(numpy_batch(table))
    key = {(str(o).split(":")[-1], str(b)): k
           for k, (o, b) in enumerate(zip(w["object_id"], w["band"], strict=True))}
    matched = 0
    for i in rr:
        k = next((v for (o, b), v in key.items()
                  if o.endswith(str(ref["object_id"][i])) and b == ref["band"][i]), None)
        assert k is not None, (ref["object_id"][i], ref["band"][i])
        valid = ref["mask"][i]
        assert np.array_equal(w["mask"][k], valid)
        diff = w["times"][k][valid].astype(np.float64) - ref["times"][i][valid]
        # The official mean is off by a constant (its float32 sum); the rest is float32
        # rounding of MJD ~5e4 (spacing 0.004 d).
        assert abs(np.median(diff)) < 0.05
        np.testing.assert_allclose(diff - np.median(diff), 0.0, atol=5e-3)
        np.testing.assert_allclose(w["values"][k][valid], ref["values"][i][valid], atol=1e-5)
        matched += 1
    assert matched == rr.size >= 20


def test_folders_record_their_input_convention_and_old_folders_keep_working(tmp_path):
    from astroray.data.fileio import numpy_batch
    from astroray.data.synthetic import periodic_variables
    from astroray.infer.astromer import AstromerEmbedder

    table = periodic_variables(3, seed=2)
    official = create_model("astromer-v1-official", num_heads=2, head_dim=8, ffn_dim=16)
    official.save_pretrained(tmp_path / "official")
    w = AstromerEmbedder(str(tmp_path / "official")).windows(numpy_batch(table))
    valid = w["mask"]
    # Window-mean centring: the times of every window average to zero.
    np.testing.assert_allclose((w["times"] * valid).sum(1) / valid.sum(1), 0.0, atol=1e-3)
    # A folder written before these fields existed: days since the first observation, padded
    # keys excluded (the behaviour it was trained with).
    old = create_model("astromer-tiny")
    old.save_pretrained(tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    for key in ("time_origin", "attention_masking", "init", "head_norm"):
        cfg.pop(key)
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    loaded = load_model(tmp_path / "old")
    assert (loaded.config.time_origin, loaded.config.attention_masking) == ("first", "exclude")
    w = AstromerEmbedder(str(tmp_path / "old")).windows(numpy_batch(table))
    assert np.all(w["times"][:, 0] == 0.0) and np.all(w["times"][w["mask"]] >= 0.0)

