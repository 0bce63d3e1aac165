"""PyTorch DDP (Gloo) reference for bench/ddp.ts and bench/links.ts: the same MNIST training step.

Launched by the bench once per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set. Each rank
trains MLP 784-128-10 (or, with --model cnn, smolcluster's CNN: engine_torch.make_model) with SGD
(lr 0.02, momentum 0.9) on its interleaved shard of a seeded permutation, one thread per process,
and records the wall-clock end time of every step. Rank 0 prints {"step_end_times_ms": [...], ...}
as its last stdout line; the bench windows those times exactly as it windows ours.

With --eval-every N (bench:ddp's time to accuracy) every rank evaluates the whole MNIST test set after
every N steps, as `smolcluster train --eval-every N` does, records {"step", "accuracy", "time_ms"}
(time_ms: when the evaluation finished) under "evals", and with --target stops after the first
evaluation at or above it (ranks hold identical weights, so all stop at the same step). "start_ms" is
when the first step began.
"""
import argparse, json, os, sys, time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from engine_torch import make_model


def load_idx(path, offset):
    return np.fromfile(path, dtype=np.uint8, offset=offset)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--target", type=float, default=0.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    images = load_idx(os.path.join(args.data_dir, "train-images-idx3-ubyte"), 16).reshape(-1, 784)
    labels = load_idx(os.path.join(args.data_dir, "train-labels-idx1-ubyte"), 8).astype(np.int64)
    x_all = torch.from_numpy((images.astype(np.float32) / 255.0 - 0.1307) / 0.3081)
    y_all = torch.from_numpy(labels)
    test_images = load_idx(os.path.join(args.data_dir, "t10k-images-idx3-ubyte"), 16).reshape(-1, 784)
    x_test = torch.from_numpy((test_images.astype(np.float32) / 255.0 - 0.1307) / 0.3081)
    y_test = torch.from_numpy(load_idx(os.path.join(args.data_dir, "t10k-labels-idx1-ubyte"), 8).astype(np.int64))
    torch.manual_seed(0)
    if args.model == "cnn":
        x_all = x_all.reshape(-1, 1, 28, 28)
        x_test = x_test.reshape(-1, 1, 28, 28)
    model = DDP(make_model(args.model))
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    shard = torch.randperm(len(y_all), generator=g)[rank::world]
    per_epoch = len(shard) // args.batch_size
    ends, evals = [], []

    def test_accuracy():
        with torch.no_grad():
            correct = sum(int((model.module(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum()) for i in range(0, len(y_test), 1000))
        return correct / len(y_test)

    start_ms = time.time() * 1000.0
    for step in range(args.steps):
        b = step % per_epoch
        idx = shard[b * args.batch_size:(b + 1) * args.batch_size]
        x, y = x_all[idx], y_all[idx]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        ends.append(time.time() * 1000.0)
        if args.eval_every > 0 and (step + 1) % args.eval_every == 0:
            acc = test_accuracy()
            evals.append({"step": step + 1, "accuracy": acc, "time_ms": time.time() * 1000.0})
            if args.target > 0 and acc >= args.target:
                break
    dist.barrier()
    if rank == 0:
        print(json.dumps({"step_end_times_ms": ends, "start_ms": start_ms, "evals": evals, "torch": torch.__version__, "world": world}))
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
