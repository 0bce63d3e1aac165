"""PyTorch side of bench/models.ts for the llama family: transformers' LlamaForCausalLM (or Qwen2/Qwen3)
built from the same config.json keys our preset writes, on one thread, as one JSON line.

Random weights (the model's own _init_weights), random token ids, AdamW, labels = inputs shifted as
LlamaForCausalLM computes its loss; fp32, or forward and loss under torch.autocast('cpu', bfloat16).
"""
import argparse, json, resource
from timed_steps import timed_steps
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
    times, cpu, ms, loss = timed_steps(a.steps, opt, lambda: model(input_ids=x, labels=x).loss, a.precision == "bf16")
    print(json.dumps({
        "engine": "torch", "workload": a.id, "stepMs": times, "cpuMs": cpu, "samplesPerSec": 1000 * a.batch / ms,
        "tokensPerSec": 1000 * a.batch * a.context / ms, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss": loss, "detail": f"torch {torch.__version__}, transformers {transformers.__version__}", "precision": a.precision,
    }))


if __name__ == "__main__":
    main()
