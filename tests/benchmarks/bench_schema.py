"""Benchmark: schema validation of a mixed batch of rendered objects (core kinds and every vendored CRD kind).

Each run is a fresh interpreter, so the one-time cost (loading the upstream definitions and compiling
one validator per apiVersion/kind) is measured honestly; the steady-state figure is objects per
second once every kind has been compiled. Figures are the median of --runs runs.

    .venv/bin/python tests/benchmarks/bench_schema.py [--runs 5] [--objects 20000] [--version 1.34]

Target: well under 1 s for ~5,000 objects after warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import copy, json, sys, time
count, version = int(sys.argv[1]), sys.argv[2]
from tests.verification.test_schema import VALID_OBJECTS
deployment = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "vllm", "namespace": "tenant-telco-a", "labels": {"app": "vllm"}},
    "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "vllm"}}, "template": {
        "metadata": {"labels": {"app": "vllm"}},
        "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.8.0",
            "args": ["--model", "/models/llama", "--tensor-parallel-size", "8"],
            "ports": [{"containerPort": 8000, "name": "http"}],
            "resources": {"limits": {"nvidia.com/gpu": 8, "memory": "512Gi"}, "requests": {"cpu": "32"}},
            "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10},
            "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}}}}
kinds = [*VALID_OBJECTS, deployment]
batch = []
for index in range(count):
    obj = copy.deepcopy(kinds[index % len(kinds)])
    obj["metadata"]["name"] = f"{obj['metadata']['name']}-{index}"
    batch.append(obj)
t0 = time.perf_counter()
from kasbah.verification.schema import SchemaValidator
validator = SchemaValidator(version)
t1 = time.perf_counter()
issues = sum(len(validator.validate(obj)) for obj in kinds)
t2 = time.perf_counter()
issues += sum(len(validator.validate(obj)) for obj in batch)
t3 = time.perf_counter()
issues += sum(len(validator.validate(obj)) for obj in batch[:5000])
t4 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "compile_s": t2 - t1, "kinds": len(kinds), "batch_s": t3 - t2,
                  "per_second": count / (t3 - t2), "five_thousand_s": t4 - t3, "issues": issues}))
"""


def measure(count: int, version: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(count), version], capture_output=True, text=True, check=True, cwd=ROOT
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--version", default="1.34", help="Kubernetes minor version to validate against")
    args = parser.parse_args()
    runs = [measure(args.objects, args.version) for _ in range(args.runs)]
    if any(run["issues"] for run in runs):
        print("the benchmark objects are expected to be valid; fix them first", file=sys.stderr)
        return 1

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    kinds = int(runs[0]["kinds"])
    print(f"Kubernetes {args.version}, {args.objects} objects of {kinds} kinds, median of {args.runs} runs")
    print(f"  import + load upstream definitions : {median('load_s') * 1000:8.1f} ms")
    print(f"  compile {kinds} validators (first use) : {median('compile_s') * 1000:8.1f} ms")
    print(f"  validate {args.objects} objects            : {median('batch_s') * 1000:8.1f} ms")
    print(f"  throughput                         : {median('per_second'):8.0f} objects/s")
    print(f"  5,000 objects after warm-up        : {median('five_thousand_s') * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
