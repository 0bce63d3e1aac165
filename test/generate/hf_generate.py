"""Greedy generation by transformers for generate_transformers.test.ts, every case in one process
(importing torch and transformers is most of the cost): a JSON file of jobs in, each
{"folder", "prompt" (ids), "count"}; the new ids of each job (prompt excluded), in order, out as one
JSON list on stdout's last line."""
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def generate(folder: str, prompt: list, count: int) -> list:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    # No EOS: every run generates exactly `count` tokens, as ours does without eosIds.
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    ids = torch.tensor([prompt], dtype=torch.long)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=count, use_cache=True)
    return out[0, len(prompt):].tolist()


def main() -> None:
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    print(json.dumps([generate(j["folder"], j["prompt"], int(j["count"])) for j in jobs]))


if __name__ == "__main__":
    main()
