"""PyTorch side of bench/finetune.ts: LoRA training steps with Hugging Face PEFT on transformers'
LlamaForCausalLM, or full training steps of MixtralForCausalLM, one thread, one JSON line.

The model is built from the config.json keys our spec writes (hfConfigFromSpec), random weights
(the model's own _init_weights), random token ids, labels = the inputs (the model shifts them).
LoRA: peft.get_peft_model with LoraConfig(r, lora_alpha, lora_dropout, target_modules), AdamW over
the adapters only (what PEFT leaves trainable). fp32, or the forward and loss under
torch.autocast('cpu', bfloat16). Peak RSS is this process's maxrss.
"""
import argparse, json, resource
from timed_steps import timed_steps
import torch
import transformers


def build(config):
    cfg = transformers.AutoConfig.for_model(**config)
    cfg._attn_implementation = "sdpa"
    return transformers.AutoModelForCausalLM.from_config(cfg)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True, help="config.json keys as JSON")
    p.add_argument("--id", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--context", type=int, required=True)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--lora", help="LoRA as JSON: {rank, alpha, dropout, targets}; absent: full training")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    config = json.loads(a.config)
    model = build(config)
    detail = f"torch {torch.__version__}, transformers {transformers.__version__}"
    if a.lora:
        import peft
        lora = json.loads(a.lora)
        model = peft.get_peft_model(model, peft.LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], target_modules=lora["targets"], bias="none"))
        detail += f", peft {peft.__version__}"
    model.train()
    trainable = [q for q in model.parameters() if q.requires_grad]
    x = torch.randint(0, config["vocab_size"], (a.batch, a.context))
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    times, cpu, ms, loss = timed_steps(a.steps, opt, lambda: model(input_ids=x, labels=x).loss, a.precision == "bf16")
    print(json.dumps({
        "engine": "torch", "workload": a.id, "stepMs": times, "cpuMs": cpu, "samplesPerSec": 1000 * a.batch / ms,
        "tokensPerSec": 1000 * a.batch * a.context / ms, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss": loss, "trainable": sum(q.numel() for q in trainable), "detail": detail, "precision": a.precision,
    }))


if __name__ == "__main__":
    main()
