"""ServeConfig validation, the generated serve-deploy files, tokens, and result shaping (no Ray)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from astroray.cli import main
from astroray.config import ConfigError
from astroray.models.astromer import ASTROMER_TINY, AstromerClassifier, AstromerClassifierConfig
from astroray.serve import ServeConfig, check_models, read_token, serve_deploy_config
from astroray.serve.app import model_results
from astroray.serve.config import TOKEN_ENV, serve_config_yaml
from astroray.submit import _package_requirements

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "cluster" / "serve" / "astroray_serve.yaml"


def test_committed_serve_deploy_files_match_the_generator(capsys):
    cfg = ServeConfig.from_file(EXAMPLE)
    text = serve_config_yaml(cfg)
    assert (ROOT / "cluster" / "serve" / "serve_config.yaml").read_text() == text, (
        "regenerate: astroray serve --config cluster/serve/astroray_serve.yaml "
        "--print-serve-config > cluster/serve/serve_config.yaml")
    service = yaml.safe_load((ROOT / "cluster" / "kuberay" / "rayservice.yaml").read_text())
    assert service["kind"] == "RayService"
    cluster = ServeConfig.from_file(EXAMPLE.with_name("astroray_serve_k8s.yaml"))
    assert service["spec"]["serveConfigV2"] == serve_config_yaml(cluster), (
        "regenerate serveConfigV2: astroray serve --config "
        "cluster/serve/astroray_serve_k8s.yaml --print-serve-config")
    # In the pod: every interface, models and code on the shared volume, pyproject's packages.
    assert cluster.host == "0.0.0.0" and cluster.model_root == "/data/astroray"
    assert cluster.lightcurves_classify == cfg.lightcurves_classify
    mounts = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"][
        "containers"][0]["volumeMounts"]
    assert any(m["mountPath"] == "/data" for m in mounts)
    pip = cluster.runtime_env["pip"]["packages"]
    name = re.compile(r"^[A-Za-z0-9_.\-]+")
    assert sorted(name.match(p)[0] for p in pip) == sorted(
        name.match(p)[0] for p in _package_requirements(ROOT))
    assert "torch==2.13.0" in pip
    # Ray accepts the file, and its args rebuild the same config.
    from ray.serve.schema import ServeDeploySchema

    deploy = yaml.safe_load(text)
    ServeDeploySchema(**deploy)
    ServeDeploySchema(**yaml.safe_load(service["spec"]["serveConfigV2"]))
    assert ServeConfig.from_dict(deploy["applications"][0]["args"]) == cfg
    assert deploy["http_options"]["host"] == "127.0.0.1"
    # The command prints the same text.
    assert main(["serve", "--config", str(EXAMPLE), "--print-serve-config"]) == 0
    assert capsys.readouterr().out == text


@pytest.mark.parametrize(("changes", "field"), [
    ({"max_replicas": 0}, "max_replicas"),
    ({"min_replicas": 3, "max_replicas": 2}, "max_replicas"),
    ({"num_cpus": 0}, "num_cpus"),
    ({"max_batch_size": 128}, "max_ongoing_requests"),
    ({"batch_wait_timeout_s": -1}, "batch_wait_timeout_s"),
    ({"device": "tpu"}, "device"),
    ({"host": ""}, "host"),
    ({"port": 70000}, "port"),
    ({"lightcurves_classify": []}, "lightcurves_classify"),
    ({"lightcurves_classify": ["a/model", "b/model"]}, "lightcurves_classify"),
    ({"token_file": ""}, "token_file"),
    ({"runtime_env": "pip"}, "runtime_env"),
])
def test_bad_fields_name_themselves(changes, field):
    data = {"lightcurves_classify": ["out/demo/catalogue/train/model"], **changes}
    with pytest.raises(ConfigError, match=rf"ServeConfig\.{field} = "):
        ServeConfig.from_dict(data)


def test_unknown_keys_and_models_that_do_not_fit_their_route(tmp_path):
    with pytest.raises(ConfigError, match="unknown field.*max_batch"):
        ServeConfig.from_dict({"lightcurves_classify": ["m"], "max_batch": 4})
    missing = ServeConfig(lightcurves_classify=(str(tmp_path / "nothing"),))
    with pytest.raises(ConfigError, match=r"lightcurves_classify = .*nothing.*saved model"):
        check_models(missing)
    model = AstromerClassifier(AstromerClassifierConfig(encoder=ASTROMER_TINY, labels=("a", "b"),
                                                        hidden=(8,)))
    folder = model.save_pretrained(tmp_path / "clf")
    assert check_models(ServeConfig(lightcurves_classify=(str(folder),)))[
        "lightcurves_classify"][0]["kind"] == "lightcurve"
    with pytest.raises(ConfigError, match=r"spectra_classify = .*a spectrum classification"):
        check_models(ServeConfig(spectra_classify=(str(folder),)))
    relative = ServeConfig(lightcurves_classify=("clf",), model_root=str(tmp_path))
    assert relative.routes()["lightcurves_classify"] == (str(folder.resolve()),)
    # What `serve deploy` does with the generated file: import the builder, call it on args.
    from ray._common.utils import import_attr
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary as build

    deploy = serve_deploy_config(relative)["applications"][0]
    build(import_attr(deploy["import_path"]), deploy["args"])  # an Application, else TypeError
    with pytest.raises(ConfigError, match="spectra_redshift"):
        build(import_attr(deploy["import_path"]), {**deploy["args"], "spectra_redshift": ["clf"]})


def test_token_from_environment_or_file(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert read_token(None) is None
    secret = tmp_path / "token"
    secret.write_text("abc\n")
    assert read_token(str(secret)) == "abc"
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert read_token(str(secret)) == "from-env"
    monkeypatch.delenv(TOKEN_ENV)
    secret.write_text("  \n")
    with pytest.raises(ConfigError, match="token_file"):
        read_token(str(secret))
    with pytest.raises(ConfigError, match="cannot read"):
        read_token(str(tmp_path / "absent"))


def test_results_pass_extra_numeric_columns_through_as_scores():
    table = pa.table({"object_id": ["a", "b"], "prob_x": [0.25, 0.9], "prob_y": [0.75, 0.1],
                      "predicted_class": ["y", "x"], "predicted_prob": [0.75, 0.9],
                      "bald": [0.01, 0.2], "n_windows": [3, 1],
                      "embedding": [[1.0, 2.0], [3.0, 4.0]]})
    results, errors = model_results(table, {"c": "too short"}, ("x", "y"), ["c", "b", "a"])
    assert errors == [{"object_id": "c", "error": "too short"}]
    assert [r["object_id"] for r in results] == ["b", "a"]
    assert results[1]["probabilities"] == {"x": 0.25, "y": 0.75}
    assert results[1]["predicted_class"] == "y" and results[1]["predicted_prob"] == 0.75
    assert results[0]["scores"] == pytest.approx({"bald": 0.2, "n_windows": 1.0})
    z, _ = model_results(pa.table({"object_id": ["a"], "redshift": [1.5]}), {}, None, ["a"])
    assert z == [{"object_id": "a", "scores": {}, "redshift": 1.5}]
    assert serve_deploy_config(ServeConfig(lightcurves_classify=("m",)))["applications"][0][
        "import_path"] == "astroray.serve.app:build_app"
