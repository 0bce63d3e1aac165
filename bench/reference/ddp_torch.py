"""PyTorch DDP (Gloo) reference for bench/ddp.ts and bench/links.ts: the same MNIST training step.

Launched by the bench once per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set. Each rank
trains MLP 784-128-10 (or, with --model cnn, smolcluster's CNN: engine_torch.make_model) with SGD
(lr 0.02, momentum 0.9) on its interleaved shard of a seeded permutation, one thread per process,
and records the wall-clock end time of every step. Rank 0 prints {"step_end_times_ms": [...], ...}
as its last stdout line; the bench windows those times exactly as it windows ours.

--model resnet18 and --model gpt2-tiny (bench:links) train the plain-torch twins of smolcluster's
presets (test/nn/interchange/torch_models.py, the models bench:models compares) with smolcluster's
defaults for them: ResNet-18 with the CIFAR stem on [3, 32, 32] inputs (smolcluster trains it on
synthetic_image), SGD lr 0.05 momentum 0.9; GPT-2-tiny (2 layers, width 128, 4 heads, vocabulary
50,257, context 128) as a language model, AdamW lr 1e-3 with gradients clipped to norm 1. Their
inputs are a seeded pool of random images / token ids of those shapes (a step's cost does not depend
on the values); MNIST is not read and --eval-every is refused for them.

With --eval-every N (bench:ddp's time to accuracy) every rank evaluates the whole MNIST test set after
every N steps, as `smolcluster train --eval-every N` does, records {"step", "accuracy", "time_ms"}
(time_ms: when the evaluation finished) under "evals", and with --target stops after the first
evaluation at or above it (ranks hold identical weights, so all stop at the same step). "start_ms" is
when the first step began.

With --precision bf16 every step's forward pass and loss run under torch.autocast("cpu",
dtype=torch.bfloat16) (PyTorch's one-line mixed precision: its lower-precision op list in bf16, fp32
weights and optimizer), the counterpart of `smolcluster train --precision bf16`; evaluation stays fp32.
"""
import argparse, contextlib, json, os, sys, time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from engine_torch import make_model

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "nn", "interchange"))
from torch_models import GPT2LMHead, ResNet, init_like_hf  # noqa: E402

POOL = 64  # samples in the random pool of the larger models (batches cycle through it)


def load_idx(path, offset):
    return np.fromfile(path, dtype=np.uint8, offset=offset)


def mnist_setup(args, rank, world):
    """MLP or CNN on MNIST: this rank's interleaved shard of a seeded permutation, SGD lr 0.02 m 0.9."""
    images = load_idx(os.path.join(args.data_dir, "train-images-idx3-ubyte"), 16).reshape(-1, 784)
    labels = load_idx(os.path.join(args.data_dir, "train-labels-idx1-ubyte"), 8).astype(np.int64)
    x_all = torch.from_numpy((images.astype(np.float32) / 255.0 - 0.1307) / 0.3081)
    y_all = torch.from_numpy(labels)
    test_images = load_idx(os.path.join(args.data_dir, "t10k-images-idx3-ubyte"), 16).reshape(-1, 784)
    x_test = torch.from_numpy((test_images.astype(np.float32) / 255.0 - 0.1307) / 0.3081)
    y_test = torch.from_numpy(load_idx(os.path.join(args.data_dir, "t10k-labels-idx1-ubyte"), 8).astype(np.int64))
    if args.model == "cnn":
        x_all = x_all.reshape(-1, 1, 28, 28)
        x_test = x_test.reshape(-1, 1, 28, 28)
    model = DDP(make_model(args.model))
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    shard = torch.randperm(len(y_all), generator=g)[rank::world]
    per_epoch = len(shard) // args.batch_size

    def batch_at(step):
        b = step % per_epoch
        idx = shard[b * args.batch_size:(b + 1) * args.batch_size]
        return x_all[idx], y_all[idx]

    def test_accuracy():
        with torch.no_grad():
            correct = sum(int((model.module(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum()) for i in range(0, len(y_test), 1000))
        return correct / len(y_test)

    return model, opt, batch_at, test_accuracy, 0.0


def large_setup(args, rank, world):
    """ResNet-18 (CIFAR stem, 10 classes) or GPT-2-tiny (vocabulary 50,257, context 128) on a seeded random pool."""
    g = torch.Generator().manual_seed(1 + rank)
    if args.model == "resnet18":
        model = ResNet(dict(block="basic", blocks=[2, 2, 2, 2], width=64, stem="cifar", inChannels=3, out=10))
        x_pool = torch.randn(POOL, 3, 32, 32, generator=g)
        y_pool = torch.randint(0, 10, (POOL,), generator=g)
        model = DDP(model)
        opt, clip = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), 0.0
    else:
        c = dict(layers=2, width=128, heads=4, context=128, vocabSize=50257, intermediate=512)
        model = GPT2LMHead(c)
        init_like_hf(model, c["layers"])
        x_pool = torch.randint(0, c["vocabSize"], (POOL, c["context"]), generator=g)
        y_pool = torch.randint(0, c["vocabSize"], (POOL, c["context"]), generator=g)
        model = DDP(model)
        opt, clip = torch.optim.AdamW(model.parameters(), lr=1e-3), 1.0
    model.train()
    per_pool = POOL // args.batch_size

    def batch_at(step):
        b = (step % per_pool) * args.batch_size
        return x_pool[b:b + args.batch_size], y_pool[b:b + args.batch_size].reshape(-1)

    return model, opt, batch_at, None, clip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--model", choices=["mlp", "cnn", "resnet18", "gpt2-tiny"], default="mlp")
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--target", type=float, default=0.0)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    large = args.model in ("resnet18", "gpt2-tiny")
    if large and args.eval_every > 0:
        sys.exit(f"ddp_torch.py: --eval-every needs MNIST; --model {args.model} trains on random inputs")
    model, opt, batch_at, test_accuracy, clip = (large_setup if large else mnist_setup)(args, rank, world)
    ends, evals = [], []
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext
    start_ms = time.time() * 1000.0
    for step in range(args.steps):
        x, y = batch_at(step)
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = model(x)
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        ends.append(time.time() * 1000.0)
        if args.eval_every > 0 and (step + 1) % args.eval_every == 0:
            acc = test_accuracy()
            evals.append({"step": step + 1, "accuracy": acc, "time_ms": time.time() * 1000.0})
            if args.target > 0 and acc >= args.target:
                break
    dist.barrier()
    if rank == 0:
        print(json.dumps({"step_end_times_ms": ends, "start_ms": start_ms, "evals": evals, "torch": torch.__version__, "world": world, "precision": args.precision}))
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
