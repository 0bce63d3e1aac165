"""The reference side of formats.test.ts: gguf-py's quantize / dequantize (gguf.quants) on the
test's values, in and out through raw files.

    python gguf_quants.py DIR TYPE...

DIR/values.f32 holds float32 values (rows of 512); for each TYPE it writes DIR/TYPE.quant (gguf-py's
bytes, for the types gguf-py quantizes), DIR/TYPE.dequant (those bytes dequantized) and, from
DIR/TYPE.ours (bytes the test wrote: our quantization, or random bytes), DIR/TYPE.ours.dequant.
"""
import os, sys
import numpy as np
from gguf import quants, GGMLQuantizationType as T

folder, types = sys.argv[1], sys.argv[2:]
values = np.fromfile(os.path.join(folder, "values.f32"), dtype=np.float32).reshape(-1, 512)
for name in types:
    qtype = T[name.upper()]
    try:
        q = quants.quantize(values, qtype)
    except NotImplementedError:
        q = None
    if q is not None:
        q.tofile(os.path.join(folder, name + ".quant"))
        quants.dequantize(q, qtype).astype(np.float32).tofile(os.path.join(folder, name + ".dequant"))
    ours = os.path.join(folder, name + ".ours")
    if os.path.exists(ours):
        raw = np.fromfile(ours, dtype=np.uint8).reshape(values.shape[0], -1)
        quants.dequantize(raw, qtype).astype(np.float32).tofile(ours + ".dequant")
print("ok")
