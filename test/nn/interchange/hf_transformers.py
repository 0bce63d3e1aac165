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


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "tokenize":
        tok = T.AutoTokenizer.from_pretrained(sys.argv[2])
        print(json.dumps([tok.encode(t, add_special_tokens=False) for t in json.load(open(sys.argv[3]))]))
        sys.exit(0)
    if mode == "load":
        out = load(sys.argv[2], json.load(open(sys.argv[3])))
    else:
        out = make(sys.argv[2], sys.argv[3], json.load(open(sys.argv[4])), sys.argv[5], sys.argv[6])
    print(json.dumps(out))
