"""PyTorch side of test/nn/interchange/safetensors_half.test.ts (plain torch, no safetensors package).

Narrows the given float32 values to bfloat16 and float16 with torch (its round to nearest even),
writes them as a safetensors file of BF16 and F16 tensors, and widens every floating-point tensor of
the file smolcluster wrote with torch. Prints JSON; values travel as float32 bit patterns (uint32),
so NaN, infinities and signed zeros survive.
usage: torch_half.py VALUES_JSON OURS.safetensors THEIRS.safetensors
(with the safetensors package also THEIRS.safetensors.hf, written by safetensors.torch.save_file,
and our file as safetensors.torch.load_file reads it)
"""
import json, struct, sys
import torch

SIZES = {"F32": 4, "BF16": 2, "F16": 2}
DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def bits_to_floats(bits):
    signed = [b - (1 << 32) if b >= (1 << 31) else b for b in bits]
    return torch.tensor(signed, dtype=torch.int32).view(torch.float32)


def floats_to_bits(t):
    return [b & 0xFFFFFFFF for b in t.float().view(torch.int32).tolist()]


def half_bits(t):
    return [b & 0xFFFF for b in t.view(torch.int16).tolist()]


def read_floats(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__" or e["dtype"] not in DTYPES:
            continue
        b, end = e["data_offsets"]
        width = torch.int32 if e["dtype"] == "F32" else torch.int16
        t = torch.frombuffer(bytearray(body[b:end]), dtype=width).view(DTYPES[e["dtype"]])
        out[name] = {"dtype": e["dtype"], "bits": floats_to_bits(t)}
    return out


def write_halves(path, tensors):
    header, chunks, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        data = t.contiguous().view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": {torch.bfloat16: "BF16", torch.float16: "F16"}[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def main():
    values_file, ours, theirs = sys.argv[1:4]
    x = bits_to_floats(json.load(open(values_file)))
    bf16, f16 = x.to(torch.bfloat16), x.to(torch.float16)
    write_halves(theirs, {"bf16": bf16, "f16": f16})
    result = {"torch": torch.__version__, "bf16_bits": half_bits(bf16), "f16_bits": half_bits(f16), "ours": read_floats(ours)}
    try:  # Hugging Face's own reader and writer, where the package is installed (the torch venv)
        from safetensors.torch import load_file, save_file
    except ImportError:
        load_file = None
    if load_file:
        save_file({"bf16": bf16, "f16": f16}, theirs + ".hf")
        result["hf_reads_ours"] = {name: floats_to_bits(t) for name, t in load_file(ours).items()}
    print(json.dumps(result))


main()
