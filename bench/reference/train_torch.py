#!/usr/bin/env python3
"""PyTorch reference for the whole-run rows of `npm run bench:engine` (bench/engine_runs.ts).

What a user's one-process `smolcluster train --model mlp --dataset mnist --epochs 1` does, written
the usual PyTorch way: read the MNIST IDX files, normalise ((x/255 - 0.1307) / 0.3081), build MLP
784-128-10, then one epoch of shuffled batches (zero_grad, forward, cross_entropy, backward, step)
that records each step's loss (loss.item()) as a JSON line in metrics.jsonl, evaluate test accuracy
at the end, and write result.json. One thread. The parent times the whole process, start to exit.

Usage: python3 train_torch.py --data-dir DIR --out DIR --optimizer adam|sgd --lr LR --batch-size B
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_idx(path, offset):
    return np.fromfile(path, dtype=np.uint8, offset=offset)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    def images(name):
        raw = load_idx(os.path.join(args.data_dir, name), 16).reshape(-1, 784).astype(np.float32)
        return torch.from_numpy((raw / 255.0 - 0.1307) / 0.3081)

    def labels(name):
        return torch.from_numpy(load_idx(os.path.join(args.data_dir, name), 8).astype(np.int64))

    x_train, y_train = images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")
    x_test, y_test = images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte")
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    if args.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    os.makedirs(args.out, exist_ok=True)
    perm = torch.randperm(len(y_train))
    steps = len(y_train) // args.batch_size
    with open(os.path.join(args.out, "metrics.jsonl"), "w") as metrics:
        for step in range(steps):
            idx = perm[step * args.batch_size:(step + 1) * args.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            metrics.write(json.dumps({"step": step, "loss": loss.item(), "time": time.time()}) + "\n")
    with torch.no_grad():
        correct = sum(int((model(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum()) for i in range(0, len(y_test), 1000))
    result = {"steps": steps, "samples": steps * args.batch_size, "test_accuracy": correct / len(y_test)}
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
