"""PEFT's side of test/nn/lora/peft.test.ts (torch 2.13 + transformers + peft, /opt/torchvenv).

  peft_reference.py JOBS_JSON

JOBS_JSON is a list of jobs, run in one process; prints one JSON list of their results:
  {"kind": "adapter", "base": DIR, "adapter": DIR, "x": ids, "shape": [N, T]}
      AutoModelForCausalLM.from_pretrained(base) + PeftModel.from_pretrained(adapter): the logits.
  {"kind": "plain", "base": DIR, "x": ..., "shape": ...}
      from_pretrained(base) alone (a merged folder): the logits.
  {"kind": "make", "base": DIR, "out": DIR, "r": R, "alpha": A, "targets": [...], "seed": S, "x": ..., "shape": ...}
      get_peft_model(base, LoraConfig(...)) with every lora_B moved off zero (seeded), save_pretrained(out): the logits.
All in float32, eval mode; logits flattened.
"""
import json, sys, warnings
import torch
import transformers as T
import peft

warnings.filterwarnings("ignore")


def logits_of(model, job):
    model.eval()
    ids = torch.tensor(job["x"], dtype=torch.long).reshape(job["shape"])
    with torch.no_grad():
        return model(input_ids=ids).logits.reshape(-1).tolist()


def run(job):
    base = T.AutoModelForCausalLM.from_pretrained(job["base"], torch_dtype=torch.float32)
    if job["kind"] == "plain":
        return {"logits": logits_of(base, job)}
    if job["kind"] == "adapter":
        return {"logits": logits_of(peft.PeftModel.from_pretrained(base, job["adapter"]), job)}
    torch.manual_seed(job["seed"])
    config = peft.LoraConfig(r=job["r"], lora_alpha=job["alpha"], target_modules=job["targets"], lora_dropout=0.0, task_type="CAUSAL_LM")
    model = peft.get_peft_model(base, config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    model.save_pretrained(job["out"])
    return {"logits": logits_of(model, job)}


print(json.dumps([run(job) for job in json.load(open(sys.argv[1]))]))
