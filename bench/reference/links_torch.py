"""PyTorch DDP (Gloo) reference for bench/links.ts: MNIST MLP or CNN, the same layers as smolcluster's.

Launched once per rank (inside the bench's network namespaces) with RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT set; one thread per process; SGD lr 0.02 momentum 0.9 on an interleaved shard of a
seeded permutation. Rank 0 prints {"step_end_times_ms": [...]} as its last stdout line. Gloo cannot
be delayed by smolcluster's test-only latency knob: its runs see the token-bucket bandwidth only.
"""
import argparse, json, os, sys, time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP


def model_for(name):
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--model", choices=["mlp", "cnn"], required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    raw = np.fromfile(os.path.join(args.data_dir, "train-images-idx3-ubyte"), dtype=np.uint8, offset=16)
    labels = np.fromfile(os.path.join(args.data_dir, "train-labels-idx1-ubyte"), dtype=np.uint8, offset=8).astype(np.int64)
    x_all = torch.from_numpy((raw.astype(np.float32) / 255.0 - 0.1307) / 0.3081).reshape(-1, 1, 28, 28)
    y_all = torch.from_numpy(labels)
    torch.manual_seed(0)
    model = DDP(model_for(args.model))
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    shard = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0))[rank::world]
    per_epoch = len(shard) // args.batch_size
    ends = []
    for step in range(args.steps):
        b = step % per_epoch
        idx = shard[b * args.batch_size:(b + 1) * args.batch_size]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x_all[idx]), y_all[idx]).backward()
        opt.step()
        ends.append(time.time() * 1000.0)
    dist.barrier()
    if rank == 0:
        print(json.dumps({"step_end_times_ms": ends, "torch": torch.__version__, "world": world}))
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
