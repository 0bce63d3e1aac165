"""transformers' apply_chat_template on each case of a JSON file: [{dir, messages, add_generation_prompt, tools?}].
Prints one JSON list of the rendered texts (one process for every case: importing transformers is the cost)."""
import json
import sys

from transformers import AutoTokenizer

cases = json.load(open(sys.argv[1]))
tokenizers = {}
out = []
for case in cases:
    tok = tokenizers.get(case["dir"]) or AutoTokenizer.from_pretrained(case["dir"])
    tokenizers[case["dir"]] = tok
    out.append(tok.apply_chat_template(case["messages"], tools=case.get("tools"), tokenize=False, add_generation_prompt=case["add_generation_prompt"]))
print(json.dumps(out))
