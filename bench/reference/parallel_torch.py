"""PyTorch reference for bench/parallel.ts: GPT-2 over gloo on CPU, one thread per process.

Launched once per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set. The model is Hugging
Face's GPT2LMHeadModel built from a GPT2Config (no weights are downloaded) with the layers, width,
heads, positions and dropout the bench passes (smolcluster's preset), vocabulary 50,257, SDPA
attention. Inputs are a seeded pool of random token ids of [batch, context] (a step's cost does not
depend on the values). AdamW lr 1e-3, gradients clipped to global norm 1 (smolcluster's defaults
for transformers). --mode:
  ddp    DistributedDataParallel; each rank trains --batch-size sequences per step.
  fsdp2  torch.distributed.fsdp.fully_shard on every block, then the root (FSDP2); --batch-size per rank.
  gpipe, 1f1b
         torch.distributed.pipelining: the blocks cut into WORLD_SIZE contiguous stages (stage 0 the
         embeddings, the last ln_f and the LM head), ScheduleGPipe / Schedule1F1B over
         --micro-batches; one pipeline, so a step trains --batch-size sequences. The LM head's weight
         is tied to the token embedding: the last stage holds a copy, and the two copies' gradients
         are summed between the first and last stage every step (as smolcluster does).
Each rank records the wall-clock end of every step and prints one JSON line: {"rank",
"step_end_times_ms", "peak_rss_bytes" (getrusage ru_maxrss), "base_rss_bytes" (VmRSS once torch,
transformers and the process group are up, before the model is built), ...}; a
failure prints {"rank", "error": first line of the exception} and exits 3, so the bench can report
what failed on gloo/CPU and go on.
"""
import argparse, json, os, resource, sys, time, traceback

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

POOL = 4  # batches in the random pool


def build_model(args):
    from transformers import GPT2Config, GPT2LMHeadModel
    cfg = GPT2Config(n_layer=args.layers, n_embd=args.width, n_head=args.heads, n_positions=args.positions,
                     vocab_size=args.vocab, resid_pdrop=args.dropout, embd_pdrop=args.dropout, attn_pdrop=args.dropout)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg)
    model.train()
    return model


def lm_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


class Stage(nn.Module):
    """One pipeline stage of an HF GPT-2: embeddings on the first, blocks [lo, hi), ln_f + head on the last."""

    def __init__(self, model, lo, hi, first, last):
        super().__init__()
        t = model.transformer
        self.first, self.last = first, last
        if first:
            self.wte, self.wpe, self.drop = t.wte, t.wpe, t.drop
        self.blocks = nn.ModuleList(t.h[lo:hi])
        if last:
            self.ln_f = t.ln_f
            # The tied weight: a copy of its own here, its gradient summed with stage 0's each step.
            self.head = nn.Linear(t.wte.weight.shape[1], t.wte.weight.shape[0], bias=False)
            with torch.no_grad():
                self.head.weight.copy_(t.wte.weight)

    def forward(self, x):
        if self.first:
            pos = torch.arange(x.shape[1])
            x = self.drop(self.wte(x) + self.wpe(pos))
        for b in self.blocks:
            o = b(x)
            x = o[0] if isinstance(o, tuple) else o
        if self.last:
            x = self.head(self.ln_f(x))
        return x


def clip_(params, max_norm, group=None):
    """Global-norm clipping; with a group, the squares are summed over its ranks (pipeline stages)."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = torch.stack([g.detach().pow(2).sum() for g in grads]).sum() if grads else torch.zeros(())
    if group is not None:
        dist.all_reduce(sq, group=group)
    scale = max_norm / (sq.sqrt() + 1e-6)
    if scale < 1:
        for g in grads:
            g.mul_(scale)


def data_pool(args, rank):
    g = torch.Generator().manual_seed(1 + rank)
    x = torch.randint(0, args.vocab, (POOL, args.batch_size, args.context), generator=g)
    y = torch.randint(0, args.vocab, (POOL, args.batch_size, args.context), generator=g)
    return x, y


def rss_now():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))


def data_parallel(args, rank, world):
    model = build_model(args)
    if args.mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP
        model = DDP(model)
    else:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh("cpu", (world,))
        for block in model.transformer.h:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    xs, ys = data_pool(args, rank)

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = lm_loss(model(xs[i % POOL]).logits, ys[i % POOL])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step


def pipeline(args, rank, world):
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe
    model = build_model(args)
    per, extra = divmod(args.layers, world)
    bounds = [s * per + min(s, extra) for s in range(world + 1)]
    first, last = rank == 0, rank == world - 1
    module = Stage(model, bounds[rank], bounds[rank + 1], first, last)
    del model
    stage = PipelineStage(module, rank, world, torch.device("cpu"))
    cls = ScheduleGPipe if args.mode == "gpipe" else Schedule1F1B
    schedule = cls(stage, n_microbatches=args.micro_batches, loss_fn=lm_loss)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    tied = dist.new_group([0, world - 1]) if world > 1 else None
    everyone = dist.new_group(list(range(world)))
    xs, ys = data_pool(args, 0)

    def step(i):
        opt.zero_grad(set_to_none=True)
        if first:
            schedule.step(xs[i % POOL])
        elif last:
            schedule.step(target=ys[i % POOL], losses=[])
        else:
            schedule.step()
        if world > 1 and (first or last):
            w = module.wte.weight if first else module.head.weight
            dist.all_reduce(w.grad, group=tied)
        clip_(list(module.parameters()), 1.0, everyone)
        opt.step()

    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["ddp", "fsdp2", "gpipe", "1f1b"], required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--positions", type=int, required=True)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--context", type=int, required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--micro-batches", type=int, default=4)
    ap.add_argument("--steps", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    import transformers  # noqa: F401  (loaded before the baseline is read, as the model build would)
    base = rss_now()
    try:
        step = (data_parallel if args.mode in ("ddp", "fsdp2") else pipeline)(args, rank, world)
        start_ms, ends = time.time() * 1000.0, []
        for i in range(args.steps):
            step(i)
            ends.append(time.time() * 1000.0)
        dist.barrier()
    except Exception as e:  # reported, not raised: the bench says what failed on gloo/CPU and goes on
        first_line = (str(e).strip().split("\n") or [""])[0]
        print(json.dumps({"rank": rank, "mode": args.mode, "error": f"{type(e).__name__}: {first_line}"[:300]}))
        traceback.print_exc(file=sys.stderr)
        sys.stdout.flush()
        os._exit(3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rank": rank, "mode": args.mode, "world": world, "start_ms": start_ms, "step_end_times_ms": ends,
                      "peak_rss_bytes": peak, "base_rss_bytes": base, "torch": torch.__version__}))
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
