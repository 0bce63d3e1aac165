"""Reference all-reduce timings with torch.distributed (Gloo) on 127.0.0.1, for bench/allreduce.ts.

Usage: python3 bench/reference/allreduce_gloo.py --workers 2 --sizes 4096,1048576 --iters 20 --warmup 5
Prints one JSON object on stdout: {"workers": N, "results": [{"bytes": B, "median_us": T}, ...]}.
Timing matches ours: each iteration is timed on every rank, the per-iteration maximum over ranks is
taken, and the median of those is reported, over at least --iters iterations and at least 0.1 s of
them (at most 2000).
"""
import argparse
import json
import math
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


TIMED_S = 0.1
MAX_TIMED = 2000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, world, port, sizes, iters, warmup, out_queue):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    results = []
    for nbytes in sizes:
        buf = torch.ones(max(1, nbytes // 4), dtype=torch.float32)
        # Warm-up: the iteration count, and at least 0.2 s (same policy as bench/allreduce.ts).
        # Rank 0's clock decides, so every rank runs the same number of iterations.
        start = time.perf_counter()
        done = 0
        more = torch.ones(1)
        while more.item() > 0:
            for _ in range(10):
                dist.all_reduce(buf)
                done += 1
            more[0] = 1.0 if done < warmup or time.perf_counter() - start < 0.2 else 0.0
            dist.broadcast(more, 0)
        # Timed iterations: at least `iters` and enough for TIMED_S at the warm-up's pace, at most
        # MAX_TIMED (the same rule as bench/allreduce.ts); rank 0's pace decides.
        count = torch.tensor([float(min(MAX_TIMED, max(iters, math.ceil(TIMED_S / max((time.perf_counter() - start) / done, 1e-6)))))])
        dist.broadcast(count, 0)
        n = int(count.item())
        times = torch.zeros(n, dtype=torch.float64)
        for i in range(n):
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            times[i] = (time.perf_counter() - t0) * 1e6
        dist.all_reduce(times, op=dist.ReduceOp.MAX)
        results.append({"bytes": nbytes, "median_us": statistics.median(times.tolist())})
    if rank == 0:
        out_queue.put(results)
    dist.barrier()
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sizes", default="4096,1048576")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=worker, args=(r, a.workers, port, sizes, a.iters, a.warmup, q)) for r in range(a.workers)]
    for pr in procs:
        pr.start()
    results = q.get(timeout=600)
    for pr in procs:
        pr.join(timeout=60)
    json.dump({"workers": a.workers, "torch": torch.__version__, "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
