"""PyTorch side of bench/models.ts: the same workload on one thread, as one JSON line.

The models are the plain-torch references of the safetensors exchange test
(test/nn/interchange/torch_models.py: Hugging Face / torchvision names and semantics).
"""
import argparse, json, os, resource, sys
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "nn", "interchange"))
from torch_models import BertForMaskedLM, GPT2LMHead, ResNet, init_like_hf  # noqa: E402
from timed_steps import timed_steps  # noqa: E402

SIZES = {
    "gpt2": dict(layers=12, width=768, heads=12, context=1024),
    "gpt2-tiny": dict(layers=2, width=128, heads=4, context=128),
    "bert-mini": dict(layers=4, width=256, heads=4, context=512),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = p.parse_args()
    w = json.loads(a.workload)
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    tokens = len(w["input"]) == 1
    if w["model"].startswith("resnet"):
        model = ResNet(dict(block="basic", blocks=[2, 2, 2, 2], width=64, stem="cifar", inChannels=3, out=w["classes"]))
        x = torch.randn(w["batch"], *w["input"])
        y = torch.randint(0, w["classes"], (w["batch"],))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    else:
        c = dict(SIZES[w["model"]], vocabSize=w["classes"])
        c["intermediate"] = 4 * c["width"]
        gpt2 = w["model"].startswith("gpt2")
        model = (GPT2LMHead if gpt2 else BertForMaskedLM)(c)
        init_like_hf(model, c["layers"] if gpt2 else None)  # torch's defaults (N(0, 1) embeddings) give 8x the loss and denormal-slow steps
        x = torch.randint(0, w["classes"], (w["batch"], w["input"][0]))
        y = torch.randint(0, w["classes"], (w["batch"] * w["input"][0],))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def loss_fn():
        # Under bf16 autocast the loss runs in float32, by autocast's own lists.
        out = model(x)
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y)

    times, cpu, ms, loss = timed_steps(a.steps, opt, loss_fn, a.precision == "bf16")
    print(json.dumps({
        "engine": "torch", "workload": a.id, "stepMs": times, "cpuMs": cpu, "samplesPerSec": 1000 * w["batch"] / ms,
        "tokensPerSec": 1000 * w["batch"] * w["input"][0] / ms if tokens else None,
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "loss": loss, "detail": torch.__version__, "precision": a.precision,
    }))


if __name__ == "__main__":
    main()
