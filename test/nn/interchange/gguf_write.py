"""The writing side of gguf.test.ts: a GGUF file made by gguf-py's GGUFWriter (the library
llama.cpp's converters use), with a tensor of every type we read, and gguf-py's dequantization of
each.

    python gguf_write.py DIR

DIR/values.f32 holds 8 rows of 512 float32 values; DIR/<type>.ours the K-quant bytes the test
made (gguf-py quantizes no K-quant). Writes DIR/model.gguf (tensors named after their type),
DIR/<type>.dequant (gguf-py's float32 values of each tensor as stored), and DIR/unsupported.gguf
(a Q2_K tensor, a type we do not read).
"""
import os, sys
import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType as T, quants

folder = sys.argv[1]
values = np.fromfile(os.path.join(folder, "values.f32"), dtype=np.float32).reshape(8, 512)

w = GGUFWriter(os.path.join(folder, "model.gguf"), "qwen2")
w.add_name("gguf-test")
w.add_block_count(2)
w.add_float32("qwen2.attention.layer_norm_rms_epsilon", 1e-6)
w.add_array("tokenizer.ggml.tokens", ["<s>", "hello", "world"])
w.add_bool("tokenizer.ggml.add_bos_token", False)
w.add_tensor("F32", values)
stored = {"F32": values}
for name in ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]:
    q = quants.quantize(values, T[name])
    w.add_tensor(name, q, raw_dtype=T[name])
    stored[name] = quants.dequantize(q, T[name])
for name in ["Q4_K", "Q5_K", "Q6_K"]:
    raw = np.fromfile(os.path.join(folder, name.lower() + ".ours"), dtype=np.uint8).reshape(8, -1)
    w.add_tensor(name, raw, raw_dtype=T[name])
    stored[name] = quants.dequantize(raw, T[name])
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
for name, v in stored.items():
    v.astype(np.float32).tofile(os.path.join(folder, name.lower() + ".dequant"))

u = GGUFWriter(os.path.join(folder, "unsupported.gguf"), "llama")
u.add_tensor("blk.0.attn_q.weight", np.zeros((8, 84 * 2), dtype=np.uint8), raw_dtype=T.Q2_K)
u.write_header_to_file()
u.write_kv_data_to_file()
u.write_tensors_to_file()
u.close()
print("ok")
