"""PyTorch side of bench/gpu_models.ts: the same workload (or torch.matmul) on the GPU, as one JSON line.

The device is CUDA when torch.cuda.is_available(), else MPS when torch.backends.mps.is_available();
with neither the line says so ({"noGpu": why}) and nothing is measured: a cpu figure is never
reported as a GPU's. --device cpu exists only to check this script by hand on a machine without a
GPU; bench/gpu_models.ts never passes it.

Strict float32: TF32 is turned off for matmul and cuDNN (the issue's targets are against PyTorch
fp32). Each training step reads the loss (loss.item()), as ours reads it, so a step's time runs to
the GPU's completion; the figure is the median step.
"""
import argparse, json, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "nn", "interchange"))
from torch_models import GPT2LMHead, ResNet, init_like_hf  # noqa: E402


def pick_device(choice):
    """(torch.device, name) or (None, why not)."""
    if choice == "cpu":
        return torch.device("cpu"), "cpu (a check of this script, not a GPU figure)"
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.cuda.get_device_name(0)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps"), "mps"
    return None, f"no torch GPU: torch {torch.__version__} sees no CUDA device and no MPS"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


class GPT2OnDevice(GPT2LMHead):
    """torch_models' GPT-2 with its position ids made on the input's device."""

    def forward(self, ids):
        t = self.transformer
        x = t.wte(ids) + t.wpe(torch.arange(ids.shape[1], device=ids.device))
        for b in t.h:
            x = b(x)
        return self.lm_head(t.ln_f(x))


def build(spec):
    """The model of one of our ModelSpecs (src/nn/models), built as torch_models / torchvision do."""
    kind = spec["type"]
    if kind == "mlp":
        hidden = spec["hidden"] if isinstance(spec["hidden"], list) else [spec["hidden"]]
        layers, prev = [nn.Flatten()], spec["inputDim"]
        for w in hidden:
            layers += [nn.Linear(prev, w), nn.ReLU()]
            prev = w
        return nn.Sequential(*layers, nn.Linear(prev, spec["out"]))
    if kind == "cnn":
        side = spec["inputSize"] // 2 // 2
        return nn.Sequential(
            nn.Conv2d(spec["inChannels"], 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * side * side, 128), nn.ReLU(), nn.Linear(128, spec["out"]))
    if kind == "resnet":
        return ResNet(spec)
    if kind == "gpt2":
        c = dict(spec, intermediate=4 * spec["width"])
        model = GPT2OnDevice(c)
        init_like_hf(model, c["layers"])
        return model
    raise SystemExit(f"gpu_models_torch.py: no reference for model type {kind!r}")


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def train(w, device, steps, warmup):
    spec = w["spec"]
    model = build(spec).to(device).train()
    tokens = len(w["input"]) == 1
    if tokens:
        x = torch.randint(0, w["classes"], (w["batch"], w["input"][0]), device=device)
        y = torch.randint(0, w["classes"], (w["batch"] * w["input"][0],), device=device)
    else:
        x = torch.randn(w["batch"], *w["input"], device=device)
        y = torch.randint(0, w["classes"], (w["batch"],), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if w["optimizer"] == "sgd" else torch.optim.AdamW(model.parameters(), lr=1e-4)
    times, loss = [], float("nan")
    for s in range(warmup + steps):
        sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        out = model(x)
        l = F.cross_entropy(out.reshape(-1, out.shape[-1]), y)
        l.backward()
        opt.step()
        loss = l.item()
        if s >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    ms = median(times)
    return {
        "stepMs": times, "samplesPerSec": 1000 * w["batch"] / ms,
        "tokensPerSec": 1000 * w["batch"] * w["input"][0] / ms if tokens else None, "loss": loss,
        "params": sum(p.numel() for p in model.parameters()),  # a tied weight counts once, as in our arena
    }


def matmul(sizes, device):
    out = {}
    for n, reps in sizes:
        a = torch.rand(n, n, device=device) - 0.5
        b = torch.rand(n, n, device=device) - 0.5
        c = torch.matmul(a, b)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            c = torch.matmul(a, b)
        sync(device)
        out[str(n)] = 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", help="JSON: {spec, input, classes, batch, optimizer}")
    p.add_argument("--matmul", help="JSON: [[n, reps], ...]")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--device", choices=["auto", "cpu"], default="auto")
    a = p.parse_args()
    device, name = pick_device(a.device)
    if device is None:
        print(json.dumps({"engine": "torch", "noGpu": name, "version": torch.__version__}))
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(a.seed)
    r = matmul(json.loads(a.matmul), device) if a.matmul else train(json.loads(a.workload), device, a.steps, a.warmup)
    print(json.dumps({"engine": "torch", "device": name, "version": torch.__version__, **({"gflops": r} if a.matmul else r)}))


if __name__ == "__main__":
    main()
