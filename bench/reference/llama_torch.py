"""PyTorch side of bench/models.ts for the llama family: transformers' LlamaForCausalLM (or Qwen2/Qwen3)
built from the same config.json keys our preset writes, on one thread, as one JSON line.

Random weights (the model's own _init_weights), random token ids, AdamW, labels = inputs shifted as
LlamaForCausalLM computes its loss; fp32, or forward and loss under torch.autocast('cpu', bfloat16).
"""
import argparse, json, resource, time
import torch
import transformers


def build(config):
    cls = {"llama": transformers.LlamaForCausalLM, "qwen2": transformers.Qwen2ForCausalLM, "qwen3": transformers.Qwen3ForCausalLM}[config["model_type"]]
    cfg = transformers.AutoConfig.for_model(**config)
    cfg._attn_implementation = "sdpa"
    return cls(cfg)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True, help="config.json keys as JSON")
    p.add_argument("--id", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--context", type=int, required=True)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    config = json.loads(a.config)
    model = build(config)
    model.train()
    x = torch.randint(0, config["vocab_size"], (a.batch, a.context))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times, cpu, loss = [], [], float("nan")
    for s in range(a.steps + 1):
        t0 = time.perf_counter()
        c0 = time.process_time()
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            l = model(input_ids=x, labels=x).loss
        l.backward()
        opt.step()
        loss = l.item()
        if s > 0:
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    st = sorted(times)
    ms = st[len(st) // 2] if len(st) % 2 else (st[len(st) // 2 - 1] + st[len(st) // 2]) / 2
    print(json.dumps({
        "engine": "torch", "workload": a.id, "stepMs": times, "cpuMs": cpu, "samplesPerSec": 1000 * a.batch / ms,
        "tokensPerSec": 1000 * a.batch * a.context / ms, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss": loss, "detail": f"torch {torch.__version__}, transformers {transformers.__version__}", "precision": a.precision,
    }))


if __name__ == "__main__":
    main()
