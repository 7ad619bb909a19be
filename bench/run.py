"""specrun's benchmark: ratios from one run on this machine (``make bench``).

    python bench/run.py [--repeats 3] [--threads 1] [--quick]

1. specrun vs a hand-written minimal PyTorch loop (bench/hand.py) doing the same work:
   an MLP on digits, an MLP and the `cnn` model's default ConvNet on Fashion-MNIST subsets
   (NPZ files this script writes), as whole processes and per epoch. Goal <= 1.10x. The
   bench specs do not log the MLflow model for use (the hand loop saves none); what that
   export adds to a whole digits process is printed apart, without a goal.
2. fold-parallel vs sequential k-fold (k=5 and k=10, MLP on digits). Goal >= 2x on CPU.
3. the share of wall time spent in MLflow calls (digits: a run of well under a second, all
   fixed cost; the Fashion-MNIST subset: a run of seconds), of a warm run in process and of
   a whole ``runner run`` process (start-up included, and the wait at exit for the tracking
   process's last writes). Goal <= 5%.

Whole-process ratios are the median of ``--repeats`` back-to-back pairs of processes;
per-epoch ratios the median of ``--repeats`` rounds in one process that alternates the
hand loop and a tracked ``runner run`` (each side's fastest epoch after the first); the
MLflow share is the time the main thread spends inside MLflow calls, median of
3 x ``--repeats`` warm runs and of ``--repeats`` whole processes, and the k-fold figures
take each side's fastest of ``--repeats`` runs, alternating in one process. All processes
get the same ``--threads`` (OMP/MKL threads; 1 by default, so that processes of others
sharing the cores do not make torch's thread pool spin), and the in-process measures run
as in a ``runner`` process (the garbage collector off the start-up heap, runner/runtime/gc_policy.py).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_NPZ = ROOT / "bench" / "fashion_subset.npz"
FASHION_CNN_NPZ = ROOT / "bench" / "fashion_cnn_subset.npz"


def _idx(path: Path) -> Any:
    import numpy as np

    with gzip.open(path, "rb") as stream:
        data = stream.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_fashion_subset(train: int = 10000, test: int = 2000, path: Path = FASHION_NPZ, image: bool = False) -> Path:
    """The first ``train``/``test`` Fashion-MNIST images as specrun's NPZ dataset format
    (flat rows, or (1, 28, 28) images for the CNN)."""
    import numpy as np

    from registry._npz import write
    from registry._task import Task
    from registry.datasets import Table

    shape = (1, 28, 28) if image else (-1,)
    x = _idx(FASHION / "train-images-idx3-ubyte.gz")[:train].reshape(train, *shape).astype(np.float32)
    y = _idx(FASHION / "train-labels-idx1-ubyte.gz")[:train].astype(np.int64)
    xt = _idx(FASHION / "t10k-images-idx3-ubyte.gz")[:test].reshape(test, *shape).astype(np.float32)
    yt = _idx(FASHION / "t10k-labels-idx1-ubyte.gz")[:test].astype(np.int64)
    write(Table(x, y, Task("multiclass", n_classes=10), test=(xt, yt)), path)
    return path


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def _json(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


def compare_with_hand(workload: str, repeats: int, uri: str, env: dict[str, str]) -> dict[str, float]:
    """specrun / hand ratios for one workload, whole process and per epoch.

    Whole process: each repeat runs the hand loop and ``runner run`` back to back and gives
    one ratio; the result is the median of those paired ratios. Per epoch: one process
    alternates the two (``bench/timing.py paired``). On a shared machine the speed of the
    cores drifts by tens of percent within minutes, so only what is measured together is
    compared."""
    from runner.spec import load_spec

    py = sys.executable
    spec = f"bench/specs/{workload}.yaml"
    data = {"fashion": str(FASHION_NPZ), "fashion_cnn": str(FASHION_CNN_NPZ)}.get(workload)
    epochs = load_spec(ROOT / spec, []).train.epochs  # the hand loop does the spec's epochs
    hand_args = [py, "bench/hand.py", workload, "--epochs", str(epochs), *(["--data", data] if data else [])]
    runner_args = [py, "-m", "runner.cli", "run", spec, "--tracking-uri", uri, "--experiment", "bench"]
    _run(runner_args, env)  # warm: the store's schema, file caches
    whole = []
    for _ in range(repeats):
        hand_whole, _ = _run(hand_args, env)
        whole.append(_run(runner_args, env)[0] / hand_whole)
    paired = _json(_run([py, "bench/timing.py", "paired", spec, uri, workload, str(repeats), *([data] if data else [])], env)[1])
    return {"whole": statistics.median(whole), "epoch": paired["ratio"]}


def model_export(repeats: int, uri: str, env: dict[str, str]) -> dict[str, float]:
    """Seconds a whole ``runner run`` of the digits MLP spends more when it logs its MLflow
    model (``tracking.log_model``, on by default; off in the bench specs, as the hand loop
    saves none): the median of ``repeats`` back-to-back pairs of processes, without and with."""
    args = [sys.executable, "-m", "runner.cli", "run", "bench/specs/digits.yaml", "--tracking-uri", uri, "--experiment", "bench"]
    extra, without = [], []
    for _ in range(repeats):
        without.append(_run(args, env)[0])
        extra.append(_run([*args, "--set", "tracking.log_model=true"], env)[0] - without[-1])
    return {"seconds": statistics.median(extra), "share": statistics.median(extra) / statistics.median(without)}


def fold_parallel(k: int, repeats: int, env: dict[str, str]) -> dict[str, Any]:
    py = sys.executable
    spec = "bench/specs/digits_kfold.yaml"
    return _json(_run([py, "bench/timing.py", "cv", spec, str(k), str(repeats)], env)[1])  # type: ignore[no-any-return]


def machine(threads: int) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {device}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, torch {torch.__version__}; {threads} thread(s) per process"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="pairs of runs per ratio; runs of each side for the k-fold figures (default 3)"
    )
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL threads per process (default 1)")
    parser.add_argument("--quick", action="store_true", help="digits only, k=5 only, one repeat (a smoke test)")
    parser.add_argument(
        "--workloads", nargs="+", default=["digits", "fashion", "fashion_cnn"], choices=["digits", "fashion", "fashion_cnn"]
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["hand", "kfold", "mlflow"], help="parts to leave out")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)

    rows: list[tuple[str, str, str, str]] = []

    def row(what: str, ratio: float, goal: str, ok: bool) -> None:
        rows.append((what, f"{ratio:.2f}x" if "share" not in what else f"{ratio:.1%}", goal, "yes" if ok else "NO"))
        print(f"  {what}: {rows[-1][1]} (goal {goal})", flush=True)

    with tempfile.TemporaryDirectory(prefix="specrun-bench-") as scratch:
        uri = f"sqlite:///{Path(scratch) / 'bench.db'}"
        workloads = ["digits"] if args.quick else args.workloads
        if "fashion" in workloads:
            write_fashion_subset()
        if "fashion_cnn" in workloads:
            write_fashion_subset(3000, 1000, FASHION_CNN_NPZ, image=True)
        for workload in [] if "hand" in args.skip else workloads:
            print(f"specrun vs hand-written loop: {workload} ...", flush=True)
            r = compare_with_hand(workload, repeats, uri, env)
            model = "CNN" if workload.endswith("cnn") else "MLP"
            row(f"{workload} {model}, whole process (specrun / hand)", r["whole"], "<= 1.10x", r["whole"] <= 1.1)
            row(f"{workload} {model}, per epoch (specrun / hand)", r["epoch"], "<= 1.10x", r["epoch"] <= 1.1)
        if "hand" not in args.skip and "digits" in workloads:
            print("logging the MLflow model for use (tracking.log_model): digits ...", flush=True)
            r = model_export(repeats, uri, env)
            rows.append(("digits MLP, whole process: logging the MLflow model adds", f"{r['seconds']:.2f} s ({r['share']:.0%})", "-", "-"))
            print(f"  {rows[-1][1]}", flush=True)
        for k in [] if "kfold" in args.skip else [5] if args.quick else [5, 10]:
            print(f"fold-parallel vs sequential, k={k} ...", flush=True)
            r = fold_parallel(k, repeats, env)
            mode = r["mode"]
            speedup = r["sequential"]["wall"] / r["parallel"]["wall"]
            print(f"  sequential {r['sequential']['wall']:.2f} s, fold-parallel {r['parallel']['wall']:.2f} s", flush=True)
            row(f"k={k} digits MLP, sequential / fold-parallel ({mode}), wall", speedup, ">= 2x", speedup >= 2)
            cpu = r["sequential"]["cpu"] / r["parallel"]["cpu"]
            row(f"k={k} digits MLP, sequential / fold-parallel ({mode}), CPU time", cpu, ">= 2x", cpu >= 2)
        for workload in [] if "mlflow" in args.skip else [w for w in workloads if w in ("digits", "fashion")]:
            print(f"MLflow share of a run: {workload} ...", flush=True)
            r = _json(_run([sys.executable, "bench/timing.py", "mlflow", f"bench/specs/{workload}.yaml", uri, str(3 * repeats)], env)[1])
            print(f"  {r['mlflow_seconds'] * 1000:.0f} ms of a run in MLflow calls", flush=True)
            row(f"{workload} MLP, warm run in process: share of its wall time in MLflow calls", r["share"], "<= 5%", r["share"] <= 0.05)
            shares = []
            for _ in range(repeats):
                wall, out = _run([sys.executable, "bench/timing.py", "process", f"bench/specs/{workload}.yaml", uri], env)
                shares.append(_json(out)["mlflow_seconds"] / wall)
            share = statistics.median(shares)
            row(f"{workload} MLP, whole `runner run` process: share of its wall time in MLflow calls", share, "<= 5%", share <= 0.05)

    print(f"\nMachine: {machine(args.threads)}; {repeats} run(s) of each side\n")
    print("| measure | result | goal | met |\n|---|---|---|---|")
    for what, value, goal, ok in rows:
        print(f"| {what} | {value} | {goal} | {ok} |")


if __name__ == "__main__":
    main()
