"""Writes a Hugging Face folder (GPT-2 or the Llama family, as saveFolder writes it) as a GGUF file for
llama.cpp, with the pip package `gguf` (GGUFWriter): the same weights bench:generate runs on every engine.

    python hf_to_gguf.py FOLDER OUT.gguf [FOLDER OUT.gguf ...] --dtype f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1

F32 and BF16 as they say; a legacy quantized type (gguf-py quantizes these byte for byte as ggml's
reference does) applies to every matrix, the embedding and head included, as `llama-quantize
--pure` would. model_type llama, qwen2 (q/k/v biases) and qwen3 (q/k norms) are the Llama family.

Tensor names and layouts are the ones llama.cpp's loader expects (its convert_hf_to_gguf.py does the same):
GPT-2's Conv1D weights [in, out] transposed to [out, in]; Llama's q and k rows permuted from Hugging
Face's rotate-half order to llama.cpp's interleaved rotary pairs (model_type llama only: llama.cpp
runs qwen2 and qwen3 with rotate-half, as Hugging Face does). 1-d tensors (norms, biases) stay F32.
The vocabulary is the folder's tokenizer.json where a Llama-family folder has one (its tokens, merges
and chat template, as convert_hf_to_gguf.py writes them), else a stand-in of the right size
(distinct byte-level strings, no real merges): the bench feeds token ids, never text.
"""
import argparse, json, os, sys
import numpy as np
import gguf
from safetensors.numpy import load_file


def load_weights(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    weights = {}
    for f in files:
        weights.update(load_file(os.path.join(folder, f)))
    return weights


def byte_chars():
    """GPT-2's printable stand-in for each byte (the byte-level alphabet llama.cpp decodes)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return [chars[b] for b in range(256)]


def stand_in_vocab(writer, vocab_size):
    alphabet = byte_chars()

    def token(i):
        # i's digits in base 256, spelled in the byte alphabet: distinct for every id (Qwen2.5's
        # 151,936 need three characters past 65,535).
        text = alphabet[i % 256]
        while i >= 256:
            i //= 256
            text = alphabet[i % 256] + text
        return text

    tokens = [token(i) for i in range(vocab_size)]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.NORMAL] * vocab_size)
    # llama.cpp refuses a gpt2 vocabulary without merges (an empty list is not written): at least one.
    merges = [f"{alphabet[i // 256]} {alphabet[i % 256]}" for i in range(256, min(vocab_size, 512))]
    writer.add_token_merges(merges or [f"{alphabet[0]} {alphabet[1]}"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(vocab_size - 1)


PRE_OF_MODEL_TYPE = {"qwen2": "qwen2", "qwen3": "qwen2", "llama": "llama-bpe"}


def real_vocab(writer, folder, cfg):
    """The folder's own byte-level BPE tokenizer, written as convert_hf_to_gguf.py writes one: tokens
    by id (padded to the model's vocabulary), added special tokens CONTROL and other added ones
    USER_DEFINED, merges, the llama.cpp `pre` name of the family, the end token and chat template."""
    tok = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    conf_path = os.path.join(folder, "tokenizer_config.json")
    conf = json.load(open(conf_path, encoding="utf-8")) if os.path.exists(conf_path) else {}
    added = {t["id"]: t for t in tok.get("added_tokens", [])}
    tokens = [f"[PAD{i}]" for i in range(cfg["vocab_size"])]
    types = [gguf.TokenType.UNUSED] * cfg["vocab_size"]
    for text, i in tok["model"]["vocab"].items():
        tokens[i], types[i] = text, gguf.TokenType.NORMAL
    for i, t in added.items():
        tokens[i], types[i] = t["content"], gguf.TokenType.CONTROL if t["special"] else gguf.TokenType.USER_DEFINED
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(PRE_OF_MODEL_TYPE[cfg["model_type"]])
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]])
    eos = conf.get("eos_token")
    eos = eos["content"] if isinstance(eos, dict) else eos
    if eos in tokens:
        writer.add_eos_token_id(tokens.index(eos))
    writer.add_add_bos_token(False)
    if isinstance(conf.get("chat_template"), str):
        writer.add_chat_template(conf["chat_template"])


def permute_rotary(w, heads):
    """Hugging Face's [first halves | second halves] rows per head -> llama.cpp's interleaved pairs."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gpt2_tensors(cfg, w):
    strip = lambda n: n[len("transformer."):] if n.startswith("transformer.") else n
    w = {strip(k): v for k, v in w.items()}
    out = {"token_embd.weight": w["wte.weight"], "position_embd.weight": w["wpe.weight"],
           "output_norm.weight": w["ln_f.weight"], "output_norm.bias": w["ln_f.bias"]}
    names = {"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm", "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}
    for i in range(cfg["n_layer"]):
        for hf, gg in names.items():
            weight = w[f"h.{i}.{hf}.weight"]
            out[f"blk.{i}.{gg}.weight"] = weight if weight.ndim == 1 else weight.T  # Conv1D [in, out] -> [out, in]
            out[f"blk.{i}.{gg}.bias"] = w[f"h.{i}.{hf}.bias"]
    if "lm_head.weight" in w and not np.array_equal(w["lm_head.weight"], w["wte.weight"]):
        out["output.weight"] = w["lm_head.weight"]
    return out


def gpt2_header(writer, cfg):
    writer.add_context_length(cfg["n_positions"])
    writer.add_embedding_length(cfg["n_embd"])
    writer.add_feed_forward_length(cfg.get("n_inner") or 4 * cfg["n_embd"])
    writer.add_block_count(cfg["n_layer"])
    writer.add_head_count(cfg["n_head"])
    writer.add_layer_norm_eps(cfg.get("layer_norm_epsilon", 1e-5))


def llama_tensors(cfg, w):
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    out = {"token_embd.weight": w["model.embed_tokens.weight"], "output_norm.weight": w["model.norm.weight"]}
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    names.update({"self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm"})
    permute = cfg["model_type"] == "llama"
    for i in range(cfg["num_hidden_layers"]):
        for hf, gg in names.items():
            for kind in ("weight", "bias"):
                key = f"model.layers.{i}.{hf}.{kind}"
                if key not in w:
                    continue
                t = w[key]
                if permute and gg in ("attn_q", "attn_k"):
                    t = permute_rotary(t, heads if gg == "attn_q" else kv)
                out[f"blk.{i}.{gg}.{kind}"] = t
    if not cfg.get("tie_word_embeddings", False):
        out["output.weight"] = w["lm_head.weight"]
    return out


def llama_header(writer, cfg):
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg.get("num_key_value_heads", cfg["num_attention_heads"]))
    writer.add_rope_dimension_count(head_dim)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    theta = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    writer.add_rope_freq_base(float(theta))
    writer.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-5))
    writer.add_vocab_size(cfg["vocab_size"])


FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32, "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0, "q4_1": gguf.LlamaFileType.MOSTLY_Q4_1, "q5_0": gguf.LlamaFileType.MOSTLY_Q5_0,
    "q5_1": gguf.LlamaFileType.MOSTLY_Q5_1, "f16": gguf.LlamaFileType.MOSTLY_F16,
}


def convert(folder, out, dtype):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    arch = cfg.get("model_type")
    if arch not in ("gpt2", "llama", "qwen2", "qwen3"):
        sys.exit(f"hf_to_gguf: {folder}/config.json: model_type {arch!r} is not gpt2, llama, qwen2 or qwen3")
    weights = {k: v.astype(np.float32) for k, v in load_weights(folder).items()}
    writer = gguf.GGUFWriter(out, arch)
    writer.add_name(f"bench-{arch}")
    writer.add_file_type(FILE_TYPES[dtype])
    (gpt2_header if arch == "gpt2" else llama_header)(writer, cfg)
    if os.path.exists(os.path.join(folder, "tokenizer.json")) and arch != "gpt2":
        real_vocab(writer, folder, cfg)
    else:
        stand_in_vocab(writer, cfg["vocab_size"])
    for name, t in (gpt2_tensors if arch == "gpt2" else llama_tensors)(cfg, weights).items():
        t = np.ascontiguousarray(t, dtype=np.float32)
        if dtype != "f32" and t.ndim == 2:
            qtype = gguf.GGMLQuantizationType[dtype.upper()]
            writer.add_tensor(name, gguf.quants.quantize(t, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, t)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"gguf": out, "arch": arch, "dtype": dtype, "bytes": os.path.getsize(out)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("pairs", nargs="+", help="FOLDER OUT.gguf, once or more (one process for several models)")
    p.add_argument("--dtype", choices=list(FILE_TYPES), default="f32")
    a = p.parse_args()
    if len(a.pairs) % 2:
        sys.exit("hf_to_gguf: give FOLDER OUT.gguf pairs")
    print(json.dumps([convert(a.pairs[i], a.pairs[i + 1], a.dtype) for i in range(0, len(a.pairs), 2)]))


if __name__ == "__main__":
    main()
