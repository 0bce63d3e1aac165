"""
TRL's GRPO math on fixed tensors — the reference of test/rl/grpo_loss.test.ts (not a test file).

  python grpo_trl.py make FOLDER          a tiny random Llama (transformers), save_pretrained to FOLDER (float32),
                                          and a PEFT LoRA adapter for it (q_proj, v_proj; B moved off 0) in FOLDER/adapter
  python grpo_trl.py cases FOLDER CASES   TRL's loss on each case of the JSON file CASES

For each case, `cases` instantiates trl.GRPOTrainer (trl 1.13) with that case's GRPOConfig and runs
TRL's own code on fixed data: `_generate_and_score_completions` with `_generate` replaced by the
case's fixed prompt and completion ids (and a reward function returning the case's fixed rewards), so
TRL pads, masks and computes the advantages itself; then the case's old and reference
log-probabilities are put in place (TRL would compute them from the model) and `compute_loss` runs
with backward. Prints one JSON line: per case the advantages, completion mask, loss, TRL's logged
metrics and every parameter's gradient (Hugging Face names and layout).
"""
import json
import sys

import torch
from datasets import Dataset
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from peft import LoraConfig, PeftModel, get_peft_model
from trl import GRPOConfig, GRPOTrainer

VOCAB = 61
EOS = 2
PAD = 0


def tokenizer():
    vocab = {f"t{i}": i for i in range(VOCAB)}
    vocab["[UNK]"] = VOCAB - 1  # never produced here: ids are given, text is only decoded for logs
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="t2", pad_token="t0", unk_token="[UNK]")


def make_model(folder):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
        eos_token_id=EOS, pad_token_id=PAD, bos_token_id=1,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # weights larger than the 0.02 init, so log-probabilities differ from uniform
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(folder, safe_serialization=True)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # PEFT starts B at 0, where A gets no gradient: move it
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.copy_(0.2 * torch.randn_like(p))
    peft.save_pretrained(f"{folder}/adapter")


def truncated_after_eos(ids):
    """The completion as TRL's _generate_single_turn keeps it: up to and including the first EOS."""
    return ids[: ids.index(EOS) + 1] if EOS in ids else list(ids)


def plain_name(name):
    """A PeftModel's parameter name as the module's own (base_model.model.X.lora_A.default.weight → X.lora_A.weight)."""
    return name.removeprefix("base_model.model.").replace(".default.", ".")


def run_case(case, folder, tok):
    model = LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    if case.get("adapter"):
        model = PeftModel.from_pretrained(model, f"{folder}/adapter", is_trainable=True)
    n = len(case["completions"])
    g = case["num_generations"]
    rewards = case["rewards"]
    args = GRPOConfig(
        output_dir=f"{folder}/trl-out", report_to="none", use_cpu=True, bf16=False, fp16=False,
        per_device_train_batch_size=n, num_generations=g, gradient_accumulation_steps=1,
        max_completion_length=case["max_completion_length"], temperature=case["temperature"],
        beta=case["beta"], epsilon=case["epsilon"], epsilon_high=case["epsilon_high"], loss_type=case["loss_type"],
        scale_rewards=case["scale_rewards"], num_iterations=case["num_iterations"],
        use_bias_correction_kl=case["use_bias_correction_kl"], logging_steps=1, seed=0,
    )
    rows = [{"prompt": " ".join(f"t{t}" for t in case["prompts"][i]), "row": i} for i in range(n)]

    def fixed_reward(prompts, completions, row, **kwargs):
        return [rewards[i] for i in row]  # None (JSON null) is TRL's "does not apply": NaN

    trainer = GRPOTrainer(model=model, reward_funcs=[fixed_reward], args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    completions = [truncated_after_eos(c) for c in case["completions"]]

    def fixed_generate(prompts):
        texts = [" ".join(f"t{t}" for t in c) for c in completions]
        return [list(p) for p in case["prompts"]], completions, None, texts, None, {}, None, None

    trainer._generate = fixed_generate
    trainer.model.train()
    inputs = trainer._generate_and_score_completions(rows)
    if case.get("old_logps") is not None:
        inputs["old_per_token_logps"] = torch.tensor(case["old_logps"], dtype=torch.float32)
    elif "old_per_token_logps" in inputs:
        raise RuntimeError("TRL computed old log-probabilities for an on-policy case")
    if case["beta"] != 0.0:
        inputs["ref_per_token_logps"] = torch.tensor(case["ref_logps"], dtype=torch.float32)
    if case.get("importance_sampling_ratio") is not None:
        # vLLM's truncated importance sampling, as _generate_and_score_completions leaves it for compute_loss
        # (the ratio itself is computed on our side: rl/importance.ts); only compute_loss reads use_vllm from here on.
        trainer.use_vllm = True
        trainer.vllm_importance_sampling_correction = True
        inputs["importance_sampling_ratio"] = torch.tensor(case["importance_sampling_ratio"], dtype=torch.float32)
    trainer.current_gradient_accumulation_steps = 1
    trainer._metrics["train"].clear()
    loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if k.startswith(("clip_ratio", "kl", "entropy"))}
    grads = {plain_name(name): p.grad.detach().reshape(-1).tolist() for name, p in trainer.model.named_parameters() if p.grad is not None}
    return {
        "advantages": inputs["advantages"].reshape(-1).tolist(),
        "completion_mask": inputs["completion_mask"].tolist(),
        "num_items_in_batch": float(inputs["num_items_in_batch"]),
        "loss": loss.item(),
        "metrics": metrics,
        "grads": grads,
    }


def main():
    command, folder = sys.argv[1], sys.argv[2]
    if command == "make":
        make_model(folder)
        print("RESULT {}")
    elif command == "cases":
        cases = json.load(open(sys.argv[3]))
        tok = tokenizer()
        print("RESULT " + json.dumps({name: run_case(case, folder, tok) for name, case in cases.items()}))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
