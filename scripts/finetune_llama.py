"""transformers' side of scripts/finetune-llama.mjs: the folder `smolcluster train --save DIR` wrote,
loaded with AutoModelForCausalLM (and AutoTokenizer where the folder has tokenizer files), its loss
on held-out windows compared with the loss our engine computed on the same windows, then a few AdamW
steps of further training in transformers. Reads one JSON file, prints one JSON line.

Input: {"folder", "heldOutText", "heldOutIds", "heldOut": [[ids]], "train": [[ids]], "batch", "steps", "lr", "seed"}
"""
import json, os, sys, time
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer


def held_out_loss(model, windows):
    """LlamaForCausalLM's mean next-token loss over the windows, in eval mode."""
    model.eval()
    with torch.no_grad():
        x = torch.tensor(windows, dtype=torch.long)
        return model(input_ids=x, labels=x).loss.item()


def main():
    a = json.load(open(sys.argv[1]))
    torch.manual_seed(a["seed"])
    torch.set_num_threads(1)
    out = {"torch": torch.__version__, "transformers": transformers.__version__}
    if os.path.exists(os.path.join(a["folder"], "tokenizer.json")):
        ids = AutoTokenizer.from_pretrained(a["folder"])(a["heldOutText"], add_special_tokens=False).input_ids
        out["tokenizer"] = {"same": ids == a["heldOutIds"], "theirs": len(ids), "ours": len(a["heldOutIds"])}
    model = AutoModelForCausalLM.from_pretrained(a["folder"], dtype=torch.float32)
    out["class"] = type(model).__name__
    out["parameters"] = model.num_parameters()
    out["heldOutLoss"] = held_out_loss(model, a["heldOut"])
    # Further training: AdamW over the training windows, `batch` at a time, in order; whether it
    # still learns is read on all of those windows before and after (one batch's loss is noisy).
    out["trainWindowsLoss"] = held_out_loss(model, a["train"])
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=a["lr"])
    losses, t0 = [], time.perf_counter()
    train = a["train"]
    for s in range(a["steps"]):
        batch = [train[(s * a["batch"] + i) % len(train)] for i in range(a["batch"])]
        x = torch.tensor(batch, dtype=torch.long)
        opt.zero_grad()
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out["trainSeconds"] = time.perf_counter() - t0
    out["trainLosses"] = losses
    out["heldOutLossAfter"] = held_out_loss(model, a["heldOut"])
    out["trainWindowsLossAfter"] = held_out_loss(model, a["train"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
