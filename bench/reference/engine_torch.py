#!/usr/bin/env python3
"""PyTorch reference for `npm run bench:engine` (bench/engine.ts runs it in the same invocation).

The same workloads as our engine, measured the same way:
  - models: MLP 784-128-10 (Flatten, Linear, ReLU, Linear) and the CNN of src/nn/models/cnn.ts
    (conv 3x3x32 pad 1, ReLU, maxpool 2, conv 3x3x64 pad 1, ReLU, maxpool 2, Linear 3136-128, ReLU,
    Linear 128-10), trained with SGD lr 0.01 momentum 0.9 on cross-entropy;
  - data: a pool of 4096 MNIST-shaped samples ([N, 1, 28, 28] uniform in [0, 1), labels 0..9), cycled
    batch by batch;
  - one training step: zero_grad, forward, cross_entropy, backward, optimizer step, loss.item();
  - matmul: the forward GEMM [256,784] @ [784,128] into a preallocated output (torch.mm(out=));
  - timing: warm-up (>= warmupMs and >= warmupSteps steps), then `windows` windows, each running
    whole steps until >= windowMs have passed; a window's rate is steps * units / seconds and the
    figure is the median window (bench/lib/windows.ts is the TypeScript twin of run_windows).
One thread: torch.set_num_threads(1) (the parent also sets OMP_NUM_THREADS=1 and friends).

Usage: python3 engine_torch.py --only mlp32,cnn64 --plans '{"mlp32": {"warmupMs": 1000, ...}}'
Prints progress on stderr and one JSON object as the last line of stdout.
"""
import argparse
import json
import platform
import re
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

POOL = 4096
WORKLOADS = {
    "mlp32": {"kind": "train", "model": "mlp", "batch": 32},
    "mlp256": {"kind": "train", "model": "mlp", "batch": 256},
    "cnn64": {"kind": "train", "model": "cnn", "batch": 64},
    "matmul": {"kind": "gemm", "M": 256, "K": 784, "N": 128},
}
DEFAULT_PLAN = {"warmupMs": 1000, "warmupSteps": 5, "windows": 7, "windowMs": 800}


def run_windows(step, units_per_step, plan):
    """Warm-up, then K windows of whole steps; the median window's rate is the figure.
    Each window also records its CPU share (process CPU time, all threads / wall time)."""
    now = time.perf_counter
    t0 = now()
    n = 0
    t = t0
    while n < plan["warmupSteps"] or (t - t0) * 1000 < plan["warmupMs"]:
        step()
        n += 1
        t = now()
    warmup = {"steps": n, "seconds": t - t0}
    rates, steps, seconds, cpu_share = [], [], [], []
    for _ in range(plan["windows"]):
        c0 = time.process_time()
        t0 = now()
        n = 0
        while True:
            step()
            n += 1
            t = now()
            if (t - t0) * 1000 >= plan["windowMs"]:
                break
        s = t - t0
        cpu_share.append((time.process_time() - c0) / s)
        rates.append(n * units_per_step / s)
        steps.append(n)
        seconds.append(s)
    return {"rates": rates, "steps": steps, "seconds": seconds, "cpuShare": cpu_share, "warmup": warmup,
            "median": median(rates), "summary": summarize(rates)}


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def summarize(xs):
    med = median(xs)
    lo, hi = min(xs), max(xs)
    return {"n": len(xs), "median": med, "min": lo, "max": hi, "mean": sum(xs) / len(xs),
            "spread": (hi - lo) / 2 / med if med > 0 else None}


def make_model(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def train_workload(w, plan, seed):
    torch.manual_seed(seed)
    model = make_model(w["model"])
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    b = w["batch"]
    x = torch.rand(POOL, 1, 28, 28)
    y = torch.randint(0, 10, (POOL,))
    batches = [(x[i * b:(i + 1) * b], y[i * b:(i + 1) * b]) for i in range(POOL // b)]
    state = {"i": 0, "loss": float("nan")}

    def step():
        xb, yb = batches[state["i"] % len(batches)]
        state["i"] += 1
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        state["loss"] = loss.item()

    r = run_windows(step, b, plan)
    r.update(unit="samples/s", loss=state["loss"])
    return r


def gemm_workload(w, plan, seed):
    torch.manual_seed(seed)
    M, K, N = w["M"], w["K"], w["N"]
    a = torch.rand(M, K)
    b = torch.rand(K, N)
    c = torch.empty(M, N)

    def step():
        torch.mm(a, b, out=c)

    r = run_windows(step, 2 * M * N * K / 1e9, plan)
    r.update(unit="GFLOP/s")
    return r


def versions():
    cfg = torch.__config__.show()
    m = re.search(r"(?:MKL-DNN|oneDNN)\s+v?([\d.]+)", cfg)
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "executable": sys.executable,
        "onednn": m.group(1) if m else None,
        "mkldnnEnabled": bool(torch.backends.mkldnn.is_available()),
        "threads": torch.get_num_threads(),
        "interopThreads": torch.get_num_interop_threads(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--plans", default="{}", help="JSON: workload id -> window plan")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    ids = [s for s in args.only.split(",") if s]
    bad = [s for s in ids if s not in WORKLOADS]
    if bad:
        sys.exit(f"unknown workload(s): {', '.join(bad)}")
    plans = json.loads(args.plans)

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set (only possible once per process)

    results, errors = {}, {}
    for wid in ids:
        w = WORKLOADS[wid]
        plan = {**DEFAULT_PLAN, **plans.get(wid, {})}
        try:
            r = (train_workload if w["kind"] == "train" else gemm_workload)(w, plan, args.seed)
        except Exception as e:  # report and go on with the other workloads
            errors[wid] = f"{type(e).__name__}: {e}"
            print(f"[torch] {wid}: failed: {errors[wid]}", file=sys.stderr, flush=True)
            continue
        results[wid] = r
        value = f"{r['median']:.1f}" if r["unit"] == "GFLOP/s" else f"{r['median']:,.0f}"
        spread = r["summary"]["spread"]
        print(f"[torch] {wid}: {value} {r['unit']} (median of {len(r['rates'])} windows"
              f"{f' ±{round(spread * 100)}%' if spread is not None else ''})", file=sys.stderr, flush=True)
    report = {"engine": "torch", "available": True, "versions": versions(), "results": results}
    if errors:
        report["errors"] = errors
    print(json.dumps(report))


if __name__ == "__main__":
    main()
