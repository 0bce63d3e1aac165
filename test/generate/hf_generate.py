"""Greedy generation by transformers for generate_transformers.test.ts: a folder, prompt ids and a
token count in; the new ids (prompt excluded) out as JSON on stdout."""
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    folder, prompt, count = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    # No EOS: every run generates exactly `count` tokens, as ours does without eosIds.
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    ids = torch.tensor([prompt], dtype=torch.long)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=count, use_cache=True)
    print(json.dumps(out[0, len(prompt):].tolist()))


if __name__ == "__main__":
    main()
