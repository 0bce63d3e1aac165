"""The reference side of gguf_faithful.test.ts: transformers' float32 logits of a GGUF file's model
(from_pretrained(gguf_file=...): gguf-py dequantizes every tensor to float32), for one sequence of
ids, teacher-forced in one forward.

    python gguf_logits.py FILE.gguf IDS.json OUT.f32
"""
import json, os, sys
import numpy as np
import torch
from transformers import AutoModelForCausalLM

path, ids_file, out = sys.argv[1:4]
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32).eval()
ids = torch.tensor([json.load(open(ids_file))], dtype=torch.long)
with torch.no_grad():
    logits = model(ids).logits[0].float().numpy()
logits.astype(np.float32).tofile(out)
print("ok")
