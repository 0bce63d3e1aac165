"""PyTorch side of test/nn/interchange/torch_parity.test.ts (plain torch 1.13, no transformers).

Reference GPT-2 (GPT2LMHeadModel layout: Conv1D weights [in, out]), BERT for masked LM and
torchvision-style ResNet, with Hugging Face / torchvision parameter names. For one family it
  1. loads the safetensors file smolcluster wrote (strict load_state_dict) and runs the inputs;
  2. builds its own seeded model, writes it as safetensors and runs the same inputs,
and prints both results as JSON (logits and mean cross-entropy, ignore_index -100).
usage: torch_models.py FAMILY CONFIG_JSON OURS.safetensors INPUTS_JSON THEIRS.safetensors [fp32|bf16|f16]
With bf16 or f16 its own model's floating-point weights are rounded to that dtype (it still computes
in fp32) and written in it, as published bf16 / f16 checkpoints are; OURS may hold BF16 / F16 too.
"""
import json, math, struct, sys
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "BF16": torch.bfloat16, "F16": torch.float16}
HALVES = {"bf16": torch.bfloat16, "f16": torch.float16}


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        raw_dt = torch.int16 if dt in (torch.bfloat16, torch.float16) else dt  # 16-bit floats: read as int16, then viewed
        t = torch.frombuffer(bytearray(body[b:end]), dtype=raw_dt).view(dt) if end > b else torch.zeros(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, chunks, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        data = (t.view(torch.int16) if t.dtype in (torch.bfloat16, torch.float16) else t).numpy().tobytes()
        header[name] = {"dtype": {torch.float32: "F32", torch.int64: "I64", torch.bfloat16: "BF16", torch.float16: "F16"}[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


class Conv1D(nn.Module):  # HF's GPT-2 projection: y = x W + b with W [in, out]
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * 0.02)
        self.bias = nn.Parameter(torch.randn(n_out) * 0.02)

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], -1)


def attention(q, k, v, causal):
    """Scaled dot-product attention: torch's fused kernel where it has one (2.0+), as Hugging Face uses."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if causal:
        T = q.shape[-2]
        att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    return att.softmax(-1) @ v


def init_like_hf(model, layers=None):
    """Hugging Face's initialisation (what smolcluster's presets use): normal(0, 0.02) weights and
    embeddings, zero biases, unit LayerNorms; GPT-2's residual projections scaled by 1/sqrt(2 layers)."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Linear, nn.Embedding, Conv1D)):
                m.weight.normal_(0.0, 0.02)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
            if layers and name.endswith("c_proj"):
                m.weight.normal_(0.0, 0.02 / math.sqrt(2 * layers))
        for name, p in model.named_parameters():
            if name == "cls.predictions.bias":
                p.zero_()


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        w, self.heads = c["width"], c["heads"]
        self.ln_1, self.ln_2 = nn.LayerNorm(w), nn.LayerNorm(w)
        self.attn = nn.Module()
        self.attn.c_attn, self.attn.c_proj = Conv1D(w, 3 * w), Conv1D(w, w)
        self.mlp = nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = Conv1D(w, 4 * w), Conv1D(4 * w, w)

    def forward(self, x):
        N, T, C = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
        heads = lambda t: t.view(N, T, self.heads, C // self.heads).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        x = x + self.attn.c_proj(attention(q, k, v, True).transpose(1, 2).reshape(N, T, C))
        return x + self.mlp.c_proj(gelu_tanh(self.mlp.c_fc(self.ln_2(x))))


class GPT2LMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(c["vocabSize"], c["width"])
        self.transformer.wpe = nn.Embedding(c["context"], c["width"])
        self.transformer.h = nn.ModuleList([GPT2Block(c) for _ in range(c["layers"])])
        self.transformer.ln_f = nn.LayerNorm(c["width"])
        self.lm_head = nn.Linear(c["width"], c["vocabSize"], bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied

    def forward(self, ids):
        t = self.transformer
        x = t.wte(ids) + t.wpe(torch.arange(ids.shape[1]))
        for b in t.h:
            x = b(x)
        return self.lm_head(t.ln_f(x))


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        w, self.heads = c["width"], c["heads"]
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        s = self.attention.self
        s.query, s.key, s.value = nn.Linear(w, w), nn.Linear(w, w), nn.Linear(w, w)
        self.attention.output = nn.Module()
        self.attention.output.dense, self.attention.output.LayerNorm = nn.Linear(w, w), nn.LayerNorm(w, eps=1e-12)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(w, c["intermediate"])
        self.output = nn.Module()
        self.output.dense, self.output.LayerNorm = nn.Linear(c["intermediate"], w), nn.LayerNorm(w, eps=1e-12)

    def forward(self, x):
        N, T, C = x.shape
        s = self.attention.self
        heads = lambda t: t.view(N, T, self.heads, C // self.heads).transpose(1, 2)
        q, k, v = heads(s.query(x)), heads(s.key(x)), heads(s.value(x))
        a = self.attention.output.LayerNorm(self.attention.output.dense(attention(q, k, v, False).transpose(1, 2).reshape(N, T, C)) + x)
        return self.output.LayerNorm(self.output.dense(F.gelu(self.intermediate.dense(a))) + a)


class BertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        w = c["width"]
        self.bert = nn.Module()
        e = self.bert.embeddings = nn.Module()
        e.word_embeddings, e.position_embeddings = nn.Embedding(c["vocabSize"], w), nn.Embedding(c["context"], w)
        e.token_type_embeddings, e.LayerNorm = nn.Embedding(2, w), nn.LayerNorm(w, eps=1e-12)
        self.bert.encoder = nn.Module()
        self.bert.encoder.layer = nn.ModuleList([BertLayer(c) for _ in range(c["layers"])])
        p = nn.Module()
        self.cls = nn.Module()
        self.cls.predictions = p
        p.transform = nn.Module()
        p.transform.dense, p.transform.LayerNorm = nn.Linear(w, w), nn.LayerNorm(w, eps=1e-12)
        p.decoder = nn.Linear(w, c["vocabSize"])
        p.bias = nn.Parameter(torch.randn(c["vocabSize"]) * 0.02)
        p.decoder.weight, p.decoder.bias = e.word_embeddings.weight, p.bias  # tied, as in HF

    def forward(self, ids):
        e = self.bert.embeddings
        x = e.LayerNorm(e.word_embeddings(ids) + e.position_embeddings(torch.arange(ids.shape[1])) + e.token_type_embeddings(torch.zeros_like(ids)))
        for layer in self.bert.encoder.layer:
            x = layer(x)
        p = self.cls.predictions
        return p.decoder(p.transform.LayerNorm(F.gelu(p.transform.dense(x))))


class Block(nn.Module):  # torchvision BasicBlock / Bottleneck (stride in the 3x3 conv)
    def __init__(self, kind, cin, planes, stride):
        super().__init__()
        exp = 1 if kind == "basic" else 4
        if kind == "basic":
            self.convs = [("conv1", cin, planes, 3, stride), ("conv2", planes, planes, 3, 1)]
        else:
            self.convs = [("conv1", cin, planes, 1, 1), ("conv2", planes, planes, 3, stride), ("conv3", planes, planes * exp, 1, 1)]
        for i, (name, a, b, k, s) in enumerate(self.convs):
            setattr(self, name, nn.Conv2d(a, b, k, s, k // 2, bias=False))
            setattr(self, f"bn{i + 1}", nn.BatchNorm2d(b))
        self.downsample = None
        if stride != 1 or cin != planes * exp:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * exp, 1, stride, bias=False), nn.BatchNorm2d(planes * exp))

    def forward(self, x):
        y = x
        for i, (name, *_rest) in enumerate(self.convs):
            y = getattr(self, f"bn{i + 1}")(getattr(self, name)(y))
            if i < len(self.convs) - 1:
                y = F.relu(y)
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        w, self.imagenet = c["width"], c["stem"] == "imagenet"
        self.conv1 = nn.Conv2d(c["inChannels"], w, 7 if self.imagenet else 3, 2 if self.imagenet else 1, 3 if self.imagenet else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        cin, exp = w, 1 if c["block"] == "basic" else 4
        for s, n in enumerate(c["blocks"]):
            blocks = []
            for b in range(n):
                blocks.append(Block(c["block"], cin, w * 2 ** s, 2 if b == 0 and s > 0 else 1))
                cin = w * 2 ** s * exp
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.nstages = len(c["blocks"])
        self.fc = nn.Linear(cin, c["out"])

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if self.imagenet:
            x = F.max_pool2d(x, 3, 2, 1)
        for s in range(self.nstages):
            x = getattr(self, f"layer{s + 1}")(x)
        return self.fc(x.mean((2, 3)))


def run(model, family, inputs):
    x = torch.tensor(inputs["x"], dtype=torch.int64 if family != "resnet" else torch.float32).reshape(inputs["shape"])
    labels = torch.tensor(inputs["labels"], dtype=torch.int64)
    result = {}
    # "autocast": the bf16 comparison (test/nn/interchange/torch_autocast.test.ts): the forward under
    # torch.autocast('cpu', dtype=torch.bfloat16), the loss in float32 as autocast's fp32 list has it.
    autocast = inputs.get("autocast", False)
    for mode in inputs["modes"]:
        model.train(mode == "train")
        with torch.no_grad():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = model(x)
            logits = logits.float()
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        result[mode] = {"logits": logits.reshape(-1).tolist(), "loss": loss.item()}
    return result


def main():
    family, config, ours, inputs_file, theirs = sys.argv[1:6]
    half = HALVES.get(sys.argv[6]) if len(sys.argv) > 6 else None
    c = json.loads(config)
    inputs = json.load(open(inputs_file))
    build = {"gpt2": GPT2LMHead, "bert": BertForMaskedLM, "resnet": ResNet}[family]
    torch.manual_seed(0)
    mine = build(c)
    state = read_safetensors(ours)
    mine.load_state_dict(state, strict=True)  # every name and shape must match, in both directions
    first = run(mine, family, inputs)
    torch.manual_seed(1)
    own = build(c)
    if family == "resnet":  # non-trivial running statistics for the eval-mode comparison
        with torch.no_grad():
            for m in own.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
    if half is not None:  # a published half-precision checkpoint: the weights are what the half dtype holds
        with torch.no_grad():
            for t in own.state_dict().values():
                if t.is_floating_point():
                    t.copy_(t.to(half).float())
    sd = own.state_dict()
    if half is not None:
        sd = {k: v.to(half) if v.is_floating_point() else v for k, v in sd.items()}
    if family == "gpt2":
        sd = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in sd.items() if k != "lm_head.weight"}
    write_safetensors(theirs, sd)
    second = run(own, family, inputs)
    print(json.dumps({"ours": first, "theirs": second, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
