"""log_softmax of transformers' logits for logprobs.test.ts, every sequence in one process (importing
torch and transformers is most of the cost): a JSON file {"folder", "sequences": [[ids]]} in; for each
sequence its log_softmax rows [T][vocab] (float32 logits, log_softmax in float32 as torch computes
it), out as one JSON list on stdout's last line."""
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    with open(sys.argv[1]) as f:
        job = json.load(f)
    model = AutoModelForCausalLM.from_pretrained(job["folder"], torch_dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for ids in job["sequences"]:
            logits = model(torch.tensor([ids], dtype=torch.long)).logits[0]
            out.append(torch.log_softmax(logits, dim=-1).tolist())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
