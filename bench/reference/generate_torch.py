"""transformers side of bench/generate.ts: greedy `generate` with its KV cache on one thread, from the
Hugging Face folder the bench wrote (the same weights every engine runs), as one JSON line.

    python generate_torch.py --folder DIR --prompts prompts.json --batches 1,8 --new-tokens 128 --dtype fp32|bf16

bf16 is the model itself in torch.bfloat16 (model.to(torch.bfloat16): weights, activations and the
cache all bfloat16), how transformers runs a bf16 checkpoint. Prefill and decode are timed with a
streamer: `put` is called with the prompt before the first forward and with each new token after it.
Fields as bench/lib/generation_run.ts.
"""
import argparse, json, time
import torch
import transformers
from transformers.generation.streamers import BaseStreamer


class Clock(BaseStreamer):
    def __init__(self):
        self.times, self.cpu = [], []

    def put(self, value):
        self.times.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def end(self):
        pass


def run(model, prompts, new_tokens):
    x = torch.tensor(prompts, dtype=torch.long)
    clock = Clock()
    c0 = time.process_time()
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False, use_cache=True, pad_token_id=0, eos_token_id=None, streamer=clock)
    t2, c2 = time.perf_counter(), time.process_time()
    # times[0]: the prompt, before the first forward; times[1]: the first new token.
    t1 = clock.times[1]
    return {"batch": len(prompts), "promptTokens": len(prompts[0]), "newTokens": out.shape[1] - x.shape[1],
            "prefillMs": (t1 - t0) * 1000, "decodeMs": (t2 - t1) * 1000,
            "cpuShare": (c2 - c0) / (t2 - t0), "decodeCpuMs": (c2 - clock.cpu[1]) * 1000, "firstIds": out[0, x.shape[1]:].tolist()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--folder", required=True)
    p.add_argument("--prompts", required=True, help="a JSON file of token-id rows")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    prompts = json.load(open(a.prompts))
    model = transformers.AutoModelForCausalLM.from_pretrained(a.folder, torch_dtype=torch.float32, attn_implementation="sdpa")
    if a.dtype == "bf16":
        model = model.to(torch.bfloat16)
    model.eval()
    model.generation_config.eos_token_id = None
    run(model, prompts[:1], 4)
    runs = [run(model, prompts[:b], a.new_tokens) for b in map(int, a.batches.split(","))]
    print(json.dumps({"engine": "transformers", "model": a.model, "dtype": a.dtype,
                      "detail": f"torch {torch.__version__}, transformers {transformers.__version__}, model in {'bfloat16' if a.dtype == 'bf16' else 'float32'}, sdpa",
                      "runs": runs}))


if __name__ == "__main__":
    main()
