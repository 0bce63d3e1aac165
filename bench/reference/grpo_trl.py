"""TRL side of bench/grpo.ts: trl.GRPOTrainer on CPU, fp32, the bench's model folder and prompts; one JSON line.

The model is the Hugging Face folder the bench wrote (random weights, config.json + model.safetensors),
read with AutoModelForCausalLM (sdpa attention, float32); the tokenizer is the same tokenizer.json our
side reads (PreTrainedTokenizerFast), with --eos-id as its end and pad token so that TRL has both:
generation is asked for min_new_tokens = max_completion_length, so the end token is never sampled and
every completion runs to its full length, as ours do (our tokenizer has no end token at all).

The prompts (--prompts, a JSON list of {"prompt", "answer"}) come in the order the steps take them:
shuffle_dataset is off, so step k samples prompts k·P … k·P + P − 1 (P = batch / G), each G times,
which are the prompts our run's step k samples. The reward is a Python port of our exact-number
(src/rl/rewards/final_number.ts: the number after the last ####, else in the last \\boxed{}, else the
last number, equal to the answer).

TRL's GRPOConfig defaults that differ from ours and are set here to ours: bf16 off (fp32), gradient
checkpointing off (ours does not recompute), a constant learning rate (ours has no schedule).

Timing: a TrainerCallback takes each optimizer step's wall clock from on_step_begin to on_step_end
(generation, rewards, loss, backward, clipping and the AdamW step; the logging after it is outside);
`_generate_single_turn` (TRL's transformers.generate path: padding, generate, the EOS mask) and
`_calculate_rewards` are timed inside it. The first --warmup steps are reported but marked.
"""
import argparse, json, math, re, resource, time


NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def final_number(text):
    """src/rl/rewards/final_number.ts in Python: the first number after the last ####, else the first
    in the last \\boxed{...}, else the last number of the text; $ and thousands commas ignored."""
    def pick(t, first):
        found = NUMBER.findall(t.replace("$", ""))
        if not found:
            return None
        v = float((found[0] if first else found[-1]).replace(",", ""))
        return v if math.isfinite(v) else None

    at = text.rfind("####")
    if at >= 0:
        return pick(text[at + 4:], True)
    at = text.rfind("\\boxed{")
    if at >= 0:
        start, depth = at + len("\\boxed{"), 0
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                if depth == 0:
                    return pick(text[start:i], True)
                depth -= 1
        return None
    return pick(text, False)


def exact_number(prompts, completions, answer, **_):
    """Our exact-number reward: 1 where the completion's final number equals the row's answer."""
    out = []
    for c, a in zip(completions, answer):
        v, want = final_number(c), float(a)
        out.append(1.0 if v is not None and abs(v - want) <= 1e-9 * max(1.0, abs(v), abs(want)) else 0.0)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--tokenizer", required=True, help="tokenizer.json")
    p.add_argument("--prompts", required=True, help="JSON list of {prompt, answer}, in step order")
    p.add_argument("--eos-id", type=int, required=True)
    p.add_argument("--generations", type=int, required=True)
    p.add_argument("--batch", type=int, required=True, help="completions per step")
    p.add_argument("--max-completion-length", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-6)
    p.add_argument("--beta", type=float, default=0.0)
    p.add_argument("--epsilon", type=float, default=0.2)
    p.add_argument("--loss-type", default="dapo")
    p.add_argument("--scale-rewards", default="group")
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", required=True)
    a = p.parse_args()

    import torch
    torch.set_num_threads(a.threads)
    import datasets, transformers, trl
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=a.tokenizer)
    end = tokenizer.convert_ids_to_tokens(a.eos_id)
    tokenizer.eos_token = end
    tokenizer.pad_token = end
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="sdpa")
    rows = json.load(open(a.prompts))
    need = a.steps * a.batch // a.generations
    if len(rows) < need:
        raise SystemExit(f"grpo_trl.py: {len(rows)} prompts for {a.steps} steps of {a.batch // a.generations}")
    data = datasets.Dataset.from_list(rows[:need])

    steps, logged, generations, rewards = [], [], [], []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()
            self.c0 = time.process_time()

        def on_step_end(self, args, state, control, **kw):
            steps.append({"seconds": time.perf_counter() - self.t0, "cpuSeconds": time.process_time() - self.c0})

        def on_log(self, args, state, control, logs=None, **kw):
            # TRL's per-step line (loss, reward, completions/mean_length, ...); the closing summary has no "loss".
            if logs is not None and "loss" in logs:
                logged.append({**{k: v for k, v in logs.items() if isinstance(v, (int, float))}, "step": state.global_step})

    class TimedTrainer(trl.GRPOTrainer):
        def _generate_single_turn(self, prompt_ids, *args, **kw):
            t0 = time.perf_counter()
            out = super()._generate_single_turn(prompt_ids, *args, **kw)
            generations.append({
                "seconds": time.perf_counter() - t0, "tokens": sum(len(c) for c in out[0]), "sequences": len(out[0]),
                "promptTokens": [len(x) for x in prompt_ids],
            })
            return out

        def _calculate_rewards(self, *args, **kw):
            t0 = time.perf_counter()
            out = super()._calculate_rewards(*args, **kw)
            rewards.append(time.perf_counter() - t0)
            return out

    config = trl.GRPOConfig(
        output_dir=a.output_dir, per_device_train_batch_size=a.batch, num_generations=a.generations,
        max_completion_length=a.max_completion_length, temperature=a.temperature, learning_rate=a.lr,
        lr_scheduler_type="constant", beta=a.beta, epsilon=a.epsilon, loss_type=a.loss_type, scale_rewards=a.scale_rewards,
        max_grad_norm=a.max_grad_norm, num_iterations=1, max_steps=a.steps, logging_steps=1, report_to="none",
        use_vllm=False, bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True, shuffle_dataset=False,
        seed=a.seed, save_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
        generation_kwargs={"min_new_tokens": a.max_completion_length},
    )
    trainer = TimedTrainer(model=model, reward_funcs=[exact_number], args=config, train_dataset=data,
                           processing_class=tokenizer, callbacks=[StepTimer()])
    first_ids = tokenizer(text=[rows[0]["prompt"]])["input_ids"][0]
    trainer.train()
    print(json.dumps({
        "engine": "trl", "detail": f"trl {trl.__version__}, transformers {transformers.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "steps": steps, "generations": generations, "rewardSeconds": rewards, "logs": logged, "warmup": a.warmup,
        "firstPromptIds": first_ids, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
