"""transformers' side of test/nn/interchange/hf_folder.test.ts (torch 2.13 + transformers, /opt/torchvenv).

  hf_transformers.py load DIR INPUTS_JSON
      from_pretrained(DIR) (a folder smolcluster wrote), in float32, runs the inputs.
  hf_transformers.py make CONFIG_JSON DIR INPUTS_JSON DTYPE SHARD
      builds a random-weight model from the config (every parameter perturbed, so LayerNorm /
      RMSNorm weights and biases are not their initial ones), save_pretrained(DIR) in DTYPE
      (float32 | bfloat16 | float16) with max_shard_size SHARD, then runs the inputs on the weights
      as saved (read back from DIR: rounded to DTYPE, computed in float32).

  hf_transformers.py tokenize DIR TEXTS_JSON
      AutoTokenizer.from_pretrained(DIR) (the tokenizer files a saved folder carries); prints the ids
      of each text, no special tokens added.

  hf_transformers.py serve
      the commands above as JSON lists on stdin, one a line, each answered on one stdout line
      (`RESULT json` or `ERROR traceback-as-json`): one process for a whole test file.

load and make print JSON {logits, loss, grads: {name: values}}: the logits of INPUTS' token ids [N, T] in eval
mode, the mean cross-entropy against INPUTS' labels as given (no shift; -100 ignored), and the
gradient of that loss for every parameter under its Hugging Face name.
"""
import json, sys
import torch
import torch.nn.functional as F
import transformers as T


def model_class(config):
    return T.BertForMaskedLM if config.model_type == "bert" else T.AutoModelForCausalLM


def run(model, inputs):
    model.eval()
    model.zero_grad()
    ids = torch.tensor(inputs["x"], dtype=torch.long).reshape(inputs["shape"])
    labels = torch.tensor(inputs["labels"], dtype=torch.long)
    logits = model(input_ids=ids).logits
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels, ignore_index=-100)
    loss.backward()
    grads = {n: p.grad.reshape(-1).tolist() for n, p in model.named_parameters() if p.grad is not None}
    return {"logits": logits.reshape(-1).tolist(), "loss": loss.item(), "grads": grads}


def load(folder, inputs):
    config = T.AutoConfig.from_pretrained(folder)
    model = model_class(config).from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    return run(model, inputs)


def make(config_json, folder, inputs, dtype, shard):
    spec = json.loads(config_json)
    config = T.AutoConfig.for_model(spec.pop("model_type"), **spec)
    config._attn_implementation = "eager"
    torch.manual_seed(5)
    model = model_class(config).from_config(config) if config.model_type != "bert" else T.BertForMaskedLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.to(getattr(torch, dtype)).save_pretrained(folder, max_shard_size=shard)
    # Read back in float32 rather than cast back: a cast would also round buffers (rotary inv_freq) that are never saved.
    return load(folder, inputs)


def answer(args):
    """One command (argv without the script): its JSON result."""
    mode = args[0]
    if mode == "tokenize":
        tok = T.AutoTokenizer.from_pretrained(args[1])
        return [tok.encode(t, add_special_tokens=False) for t in json.load(open(args[2]))]
    if mode == "load":
        return load(args[1], json.load(open(args[2])))
    return make(args[1], args[2], json.load(open(args[3])), args[4], args[5])


def serve():
    """Commands as JSON lists on stdin, one a line; each answer on one stdout line after RESULT
    (or ERROR and the traceback as a JSON string): torch and transformers are imported once."""
    import traceback
    for line in sys.stdin:
        try:
            reply = "RESULT " + json.dumps(answer(json.loads(line)))
        except Exception:
            reply = "ERROR " + json.dumps(traceback.format_exc())
        print(reply, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    else:
        print(json.dumps(answer(sys.argv[1:])))
