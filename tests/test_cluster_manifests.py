"""The cluster manifests (cluster/) against the repository: jobs, configs, resources, auth.

Every check is a function returning a list of problems, so that the last tests can show that
each one catches a broken copy of the manifests.
"""

from __future__ import annotations

import copy
import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

from astroray.submit import _package_requirements

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
RAYSERVICE = CLUSTER / "kuberay" / "rayservice.yaml"
JOBS = sorted(p.stem for p in (ROOT / "jobs").glob("*.py") if not p.name.startswith("_"))
IMAGE = re.compile(r"^rayproject/ray:(?P<version>[\d.]+)-py3\d+(?P<gpu>-gpu)?$")
CPU_KEYS = ("cpus_per_worker", "actor_cpus", "task_cpus")  # the one naming (RENAMED_FIELDS)


def _docs() -> dict[Path, list[dict[str, Any]]]:
    files = sorted([*CLUSTER.rglob("*.yaml"), *CLUSTER.rglob("*.yml")])
    return {p: [d for d in yaml.safe_load_all(p.read_text()) if d is not None] for p in files}


@pytest.fixture(scope="module")
def docs() -> dict[Path, list[dict[str, Any]]]:
    return _docs()


def _kind(docs: dict, kind: str) -> list[tuple[Path, dict]]:
    return [(p, d) for p, ds in docs.items() for d in ds if d.get("kind") == kind]


def _quantity(value: Any) -> float:
    """A Kubernetes quantity (``500m``, ``8``, ``32Gi``) as a number (bytes for memory)."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3,
             "M": 1e6, "G": 1e9}
    for unit, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def _groups(cluster_spec: dict) -> tuple[dict, list[dict]]:
    """(head, workers) of a RayCluster spec as {name, cpus, gpus, memory, min, max, ...}."""
    def group(name: str, spec: dict, lo: int, hi: int) -> dict:
        container = spec["template"]["spec"]["containers"][0]
        limits = container.get("resources", {}).get("limits", {})
        requests = container.get("resources", {}).get("requests", {})
        return {"name": name, "cpus": _quantity(limits.get("cpu", 0)),
                "gpus": int(limits.get("nvidia.com/gpu", 0)),
                "memory": _quantity(limits.get("memory", 0)), "min": lo, "max": hi,
                "limits": limits, "requests": requests, "container": container,
                "params": spec.get("rayStartParams", {}),
                "pod": spec["template"]["spec"]}

    head = group("head", cluster_spec["headGroupSpec"], 1, 1)
    workers = [group(w["groupName"], w, int(w.get("minReplicas", 0)), int(w.get("maxReplicas", 0)))
               for w in cluster_spec.get("workerGroupSpecs", [])]
    return head, workers


def _job_configs(job: str) -> list[tuple[str, dict]]:
    """The job's YAML config and the job configs it names (``pretrain: jobs/x.yaml``)."""
    out, todo = [], [f"jobs/{job}.yaml"]
    while todo:
        rel = todo.pop()
        config = yaml.safe_load((ROOT / rel).read_text()) or {}
        out.append((rel, config))
        stack = [config]
        while stack:
            node = stack.pop()
            values = node.values() if isinstance(node, dict) else node if isinstance(
                node, list) else []
            for v in values:
                if isinstance(v, str) and v.startswith("jobs/") and v.endswith(".yaml"):
                    todo.append(v)
                elif isinstance(v, dict | list):
                    stack.append(v)
    return out


def _walk_keys(node: Any):
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v, node
            yield from _walk_keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_keys(v)


def fit_problems(job: str, workers: list[dict], where: str) -> list[str]:
    """Whether the job's resource requests fit worker groups ({name, cpus, gpus, min, max})."""
    problems = []
    cpu_pod = max((w["cpus"] for w in workers), default=0)
    gpu_groups = [w for w in workers if w["gpus"] > 0]
    gpu_pod_cpus = max((w["cpus"] for w in gpu_groups), default=0)
    gpus_min = sum(w["min"] * w["gpus"] for w in gpu_groups)
    gpus_max = sum(w["max"] * w["gpus"] for w in gpu_groups)
    cpus_max = sum(w["max"] * w["cpus"] for w in workers)
    for rel, config in _job_configs(job):
        for key, value, node in _walk_keys(config):
            if key in CPU_KEYS and value is not None:
                if not 0 < float(value) <= cpu_pod:
                    problems.append(f"{where}: {rel} {key}={value} does not fit a "
                                    f"{cpu_pod}-CPU pod")
            if key in ("num_workers", "num_actors") and value:
                n = int(value)
                per = float(node.get("cpus_per_worker", node.get("actor_cpus", 1.0)) or 1.0)
                if n * per > cpus_max:
                    problems.append(f"{where}: {rel} {key}={n} x {per} CPU > {cpus_max} CPUs")
                use_gpu = node.get("use_gpu", False)
                if use_gpu is False:
                    continue
                # use_gpu: null trains on GPUs when the cluster has one per worker at the start,
                # so those GPUs must be up (min replicas); true lets the autoscaler add them.
                have = gpus_min if use_gpu is None else gpus_max
                if n > have:
                    problems.append(f"{where}: {rel} {key}={n} with use_gpu={use_gpu} needs {n} "
                                    f"GPUs, the GPU groups give {have}")
                if per > gpu_pod_cpus:
                    problems.append(f"{where}: {rel} {per} CPUs per GPU worker > GPU pod's "
                                    f"{gpu_pod_cpus}")
    return problems


def raycluster_problems(cluster: dict) -> list[str]:
    """Pods, autoscaling, images and token authentication of a RayCluster spec."""
    problems = []
    spec = cluster["spec"] if "spec" in cluster else cluster
    head, workers = _groups(spec)
    if not spec.get("enableInTreeAutoscaling"):
        problems.append("autoscaling is not enabled")
    if not any(w["gpus"] for w in workers) or not any(not w["gpus"] for w in workers):
        problems.append("needs a CPU worker group and a GPU worker group")
    secrets = set()
    for g in [head, *workers]:
        name, c = g["name"], g["container"]
        if g["max"] < 1 or not 0 <= g["min"] <= g["max"]:
            problems.append(f"{name}: replicas min {g['min']} / max {g['max']}")
        match = IMAGE.match(c.get("image", ""))
        if not match or match["version"] != ray.__version__:
            problems.append(f"{name}: image {c.get('image')} is not rayproject/ray:"
                            f"{ray.__version__}-pyXY[-gpu]")
        elif bool(match["gpu"]) != bool(g["gpus"]):
            problems.append(f"{name}: image {c['image']} for a pod with {g['gpus']} GPUs")
        if g["limits"] != g["requests"] or not g["cpus"] or not g["memory"]:
            problems.append(f"{name}: cpu/memory requests must equal limits (Ray reads them)")
        if g["cpus"] and g["memory"] < 2 * 2**30 * max(g["cpus"], 1):
            problems.append(f"{name}: {g['memory'] / 2**30:g} GiB for {g['cpus']:g} CPUs")
        params = g["params"]
        if name != "head" and float(params.get("num-cpus", g["cpus"])) != g["cpus"]:
            problems.append(f"{name}: num-cpus {params.get('num-cpus')} != cpu limit {g['cpus']}")
        if int(params.get("num-gpus", g["gpus"])) != g["gpus"]:
            problems.append(f"{name}: num-gpus {params.get('num-gpus')} != GPU limit {g['gpus']}")
        if g["gpus"] and not any(t.get("key") == "nvidia.com/gpu"
                                 for t in g["pod"].get("tolerations", [])):
            problems.append(f"{name}: no toleration for the nvidia.com/gpu taint")
        problems += [f"{name}: {p}" for p in _token_problems(c.get("env", []), secrets)]
    auto_env = spec.get("autoscalerOptions", {}).get("env", [])
    problems += [f"autoscaler: {p}" for p in _token_problems(auto_env, secrets)]
    if len(secrets) > 1:
        problems.append(f"token Secrets differ between pods: {sorted(secrets)}")
    return problems


def _token_problems(env: list[dict], secrets: set) -> list[str]:
    values = {e["name"]: e for e in env}
    problems = []
    if values.get("RAY_AUTH_MODE", {}).get("value") != "token":
        problems.append("RAY_AUTH_MODE is not token")
    ref = values.get("RAY_AUTH_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef")
    if not ref:
        problems.append("RAY_AUTH_TOKEN does not come from a Secret")
    else:
        secrets.add((ref["name"], ref["key"]))
    return problems


def rayjob_problems(path: Path, rayjob: dict, clusters: dict[str, dict],
                    claims: set[str]) -> list[str]:
    """Entry point, config, runtime environment, cluster, token and resources of a RayJob."""
    problems = []
    spec = rayjob["spec"]
    argv = shlex.split(spec["entrypoint"])
    if argv[0] != "python" or len(argv) < 2 or not argv[1].startswith("jobs/"):
        return [f"{path.name}: entrypoint {spec['entrypoint']!r} is not python jobs/JOB.py"]
    script = ROOT / argv[1]
    job = script.stem
    if not script.is_file():
        problems.append(f"{path.name}: {argv[1]} does not exist")
    if "--config" not in argv or not (ROOT / argv[argv.index("--config") + 1]).is_file():
        problems.append(f"{path.name}: no --config, or it does not exist")
    if "--out" not in argv or not argv[argv.index("--out") + 1].startswith("/data/out/"):
        problems.append(f"{path.name}: --out is not on the shared volume (/data/out/...)")
    if path.stem != job:
        problems.append(f"{path.name}: runs {argv[1]}")
    if "rayClusterSpec" in spec:
        cluster_spec = spec["rayClusterSpec"]
        if not spec.get("shutdownAfterJobFinishes"):
            problems.append(f"{path.name}: its own cluster is not shut down at the end")
    else:
        name = spec.get("clusterSelector", {}).get("ray.io/cluster")
        if name not in clusters:
            return [*problems, f"{path.name}: cluster {name!r} is not a RayCluster in cluster/"]
        cluster_spec = clusters[name]
    _, workers = _groups(cluster_spec)
    problems += fit_problems(job, workers, path.name)
    env = yaml.safe_load(spec.get("runtimeEnvYAML", "")) or {}
    pip = env.get("pip", {})
    packages = pip.get("packages", []) if isinstance(pip, dict) else pip
    wanted = _package_requirements(ROOT)  # what `astroray submit --pip` installs
    name_of = re.compile(r"^[A-Za-z0-9_.\-]+")
    if sorted(name_of.match(p)[0] for p in packages) != sorted(
            name_of.match(p)[0] for p in wanted):
        problems.append(f"{path.name}: pip packages {packages} are not pyproject's "
                        f"dependencies {wanted}")
    if "torch==2.13.0" not in packages:
        problems.append(f"{path.name}: torch is not pinned to 2.13.0")
    submitter = spec.get("submitterPodTemplate", {}).get("spec", {})
    mounts = {m["mountPath"]: m["name"] for c in submitter.get("containers", [])
              for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in submitter.get("volumes", [])}
    working_dir = str(env.get("working_dir", ""))
    if working_dir.startswith("/"):
        mount = next((m for m in mounts if working_dir.startswith(m.rstrip("/") + "/")), None)
        claim = mount and volumes.get(mounts[mount], {}).get("persistentVolumeClaim", {}).get(
            "claimName")
        if claim not in claims:
            problems.append(f"{path.name}: working_dir {working_dir} is not on a volume claim "
                            "of the submitter")
    elif not working_dir:
        problems.append(f"{path.name}: no working_dir for the repository")
    for c in submitter.get("containers", []):
        problems += [f"{path.name}: submitter: {p}" for p in _token_problems(c.get("env", []),
                                                                                set())]
    if not submitter:
        problems.append(f"{path.name}: no submitterPodTemplate carrying the token")
    return problems


def launcher_problems(config: dict) -> list[str]:
    """Node types, bounds, setup order, images and token auth of a cluster-launcher config."""
    problems = []
    types = config.get("available_node_types", {})
    head = config.get("head_node_type")
    if head not in types:
        problems.append(f"head_node_type {head!r} is not one of {sorted(types)}")
    total_min = 0
    for name, t in types.items():
        lo, hi = int(t.get("min_workers", 0)), int(t.get("max_workers", 0))
        if name != head:
            total_min += lo
            if not 0 <= lo <= hi <= config.get("max_workers", 0):
                problems.append(f"{name}: min {lo} / max {hi} / cluster max "
                                f"{config.get('max_workers')}")
        gpus = t.get("resources", {}).get("GPU", 0)
        image = t.get("docker", {}).get("worker_image", config.get("docker", {}).get("image"))
        match = IMAGE.match(image or "")
        if not match or match["version"] != ray.__version__ or bool(match["gpu"]) != bool(gpus):
            problems.append(f"{name}: image {image} for {gpus} GPUs (Ray {ray.__version__})")
        if name != head:
            setup = [*config.get("setup_commands", []),
                     *t.get("worker_setup_commands", config.get("worker_setup_commands", []))]
        else:
            setup = [*config.get("setup_commands", []), *config.get("head_setup_commands", [])]
        torch = [i for i, c in enumerate(setup) if "torch==2.13.0" in c]
        package = [i for i, c in enumerate(setup) if re.search(r"pip install .*astroray", c)]
        if not torch or not package or torch[0] > package[0]:
            problems.append(f"{name}: setup must install torch==2.13.0, then the package")
        cpu_wheel = any("whl/cpu" in setup[i] for i in torch)
        if torch and cpu_wheel == bool(gpus):
            problems.append(f"{name}: the {'CPU' if cpu_wheel else 'CUDA'} torch for "
                            f"{gpus} GPUs")
    if total_min > config.get("max_workers", 0):
        problems.append(f"min_workers add up to {total_min} > max_workers")
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config.get(key, []) if "ray start" in c]
        if not starts or not all("RAY_AUTH_MODE=token" in c for c in starts):
            problems.append(f"{key}: ray start without RAY_AUTH_MODE=token")
    if not any("auth_token" in str(k) for k in config.get("file_mounts", {})):
        problems.append("file_mounts do not carry the token (~/.ray/auth_token)")
    return problems


def _launcher_groups(config: dict) -> list[dict]:
    head = config.get("head_node_type")
    return [{"name": n, "cpus": float(t.get("resources", {}).get("CPU", 0)),
             "gpus": int(t.get("resources", {}).get("GPU", 0)),
             "min": int(t.get("min_workers", 0)), "max": int(t.get("max_workers", 0))}
            for n, t in config.get("available_node_types", {}).items() if n != head]


def _import_path_problems(import_path: str) -> list[str]:
    module, _, attr = import_path.partition(":")
    if not attr:
        module, _, attr = import_path.rpartition(".")
    try:
        return [] if hasattr(importlib.import_module(module), attr) else [
            f"{import_path}: {module} has no {attr}"]
    except ImportError as exc:
        return [f"{import_path}: {exc}"]


# ------------------------------------------------------------------------------------------


def test_every_yaml_parses_and_the_expected_files_exist(docs):
    names = {p.relative_to(CLUSTER).as_posix() for p in docs}
    assert {"kuberay/raycluster.yaml", "launcher/aws.yaml"} <= names
    assert (CLUSTER / "README.md").is_file()
    for path, ds in docs.items():
        assert ds, f"{path} is empty"
        assert all(isinstance(d, dict) for d in ds), path


def test_raycluster(docs):
    clusters = _kind(docs, "RayCluster")
    assert clusters, "no RayCluster under cluster/"
    for path, cluster in clusters:
        assert raycluster_problems(cluster) == [], path


def test_every_job_has_a_rayjob_that_fits_the_cluster(docs):
    clusters = {d["metadata"]["name"]: d["spec"] for _, d in _kind(docs, "RayCluster")}
    claims = {d["metadata"]["name"] for _, d in _kind(docs, "PersistentVolumeClaim")}
    rayjobs = _kind(docs, "RayJob")
    covered = {Path(shlex.split(d["spec"]["entrypoint"])[1]).stem for _, d in rayjobs}
    assert set(JOBS) <= covered, f"jobs without a RayJob: {sorted(set(JOBS) - covered)}"
    names = [d["metadata"]["name"] for _, d in rayjobs]
    assert len(names) == len(set(names)), "two RayJobs share a name"
    for path, rayjob in rayjobs:
        assert rayjob_problems(path, rayjob, clusters, claims) == []


def test_launcher(docs):
    launchers = [(p, d) for p, ds in docs.items() for d in ds if "available_node_types" in d]
    assert launchers, "no cluster-launcher YAML under cluster/"
    from ray.autoscaler._private.util import prepare_config, validate_config

    for path, config in launchers:
        assert launcher_problems(config) == [], path
        validate_config(prepare_config(copy.deepcopy(config)))  # Ray's own schema and rules
        for job in JOBS:
            assert fit_problems(job, _launcher_groups(config), path.name) == []


def test_serve_import_paths(docs):
    paths = [app["import_path"] for _, ds in docs.items() for d in ds
             for app in d.get("applications", []) if "import_path" in app]
    services = _kind(docs, "RayService")
    for _, svc in services:
        serve = yaml.safe_load(svc["spec"].get("serveConfigV2", "")) or {}
        apps = serve.get("applications", [])
        assert apps, "the RayService has no applications"
        paths += [app["import_path"] for app in apps]
    for import_path in paths:
        assert _import_path_problems(import_path) == []
    if not RAYSERVICE.exists():
        pytest.skip(f"{RAYSERVICE.relative_to(ROOT)} does not exist yet; Serve configs checked: "
                    f"{len(paths)}")
    assert services, f"{RAYSERVICE} holds no RayService"


# The checks catch broken copies of the real manifests.


def test_checks_catch_broken_manifests(docs):
    (_, cluster), = _kind(docs, "RayCluster")[:1]
    clusters = {cluster["metadata"]["name"]: cluster["spec"]}
    claims = {d["metadata"]["name"] for _, d in _kind(docs, "PersistentVolumeClaim")}
    path, rayjob = next((p, d) for p, d in _kind(docs, "RayJob")
                        if p.stem == "pretrain_astromer")

    broken = copy.deepcopy(cluster)
    gpu = next(w for w in broken["spec"]["workerGroupSpecs"] if "num-gpus" in w["rayStartParams"])
    gpu["minReplicas"] = 0  # pretrain's use_gpu: null would then train on CPUs
    assert any("use_gpu=None needs 2 GPUs" in p for p in rayjob_problems(
        path, rayjob, {cluster["metadata"]["name"]: broken["spec"]}, claims))
    gpu["rayStartParams"]["num-gpus"] = "2"
    gpu["template"]["spec"]["containers"][0]["image"] = "rayproject/ray:2.9.0-py311"
    del broken["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"][0]
    problems = " | ".join(raycluster_problems(broken))
    assert "num-gpus 2 != GPU limit 1" in problems and "is not rayproject/ray" in problems
    assert "head: RAY_AUTH_MODE is not token" in problems

    job = copy.deepcopy(rayjob)
    job["spec"]["entrypoint"] = job["spec"]["entrypoint"].replace(
        "jobs/pretrain_astromer.yaml", "jobs/missing.yaml")
    job["spec"]["runtimeEnvYAML"] = job["spec"]["runtimeEnvYAML"].replace(
        '"astropy>=6.0"', '"astroquery"')
    problems = " | ".join(rayjob_problems(path, job, clusters, claims))
    assert "--config" in problems and "pip packages" in problems
    job["spec"]["clusterSelector"]["ray.io/cluster"] = "elsewhere"
    assert "'elsewhere' is not a RayCluster" in rayjob_problems(path, job, clusters, claims)[-1]

    launcher = next(d for ds in docs.values() for d in ds if "available_node_types" in d)
    bad = copy.deepcopy(launcher)
    bad["head_node_type"] = "nope"
    gpu_type = next(t for t in bad["available_node_types"].values()
                    if t.get("resources", {}).get("GPU"))
    gpu_type["worker_setup_commands"] = list(reversed(gpu_type["worker_setup_commands"]))
    gpu_type["max_workers"] = 10 * bad["max_workers"]
    problems = " | ".join(launcher_problems(bad))
    assert "head_node_type 'nope'" in problems and "then the package" in problems
    assert "cluster max" in problems
    assert _import_path_problems("astroray.serve.nothing_here:build_app")
    assert _import_path_problems("astroray.cli:no_such_attribute")
