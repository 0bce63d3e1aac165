"""transformers' side of test/cli/eval.test.ts (torch + transformers, /opt/torchvenv).

  eval_transformers.py perplexity DIR IDS_JSON CONTEXT STRIDE
      the windows of transformers' perplexity guide ("Perplexity of fixed-length models") over the
      token ids: each window [begin, end) labels only the tokens after the previous window's end
      (the rest -100), the model shifts the labels; prints {nll, tokens, correct}: the scored
      tokens' summed negative log-likelihood (each token's own, summed in float64 rather than the
      guide's mean × count, which is one token off when windows overlap), their number, and how
      many were the argmax.
  eval_transformers.py pairs DIR PAIRS_JSON
      lm-eval's loglikelihood requests as token ids, [[context, continuation], ...]: prints
      [[summed log-probability of the continuation, whether every token is the greedy one], ...].
"""
import json, sys
import torch
import transformers as T


def load(folder):
    return T.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()


def perplexity(model, ids, context, stride):
    ids = torch.tensor([ids], dtype=torch.long)
    seq_len = ids.size(1)
    nll, tokens, correct, prev_end = 0.0, 0, 0, 0
    for begin in range(0, seq_len, stride):
        end = min(begin + context, seq_len)
        trg_len = end - prev_end
        input_ids = ids[:, begin:end]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            logits = model(input_ids).logits[:, :-1].double()
        labels = target_ids[:, 1:]
        scored = labels != -100
        lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        nll -= lp[scored].sum().item()
        tokens += scored.sum().item()
        correct += ((logits.argmax(-1) == labels) & scored).sum().item()
        prev_end = end
        if end == seq_len:
            break
    return {"nll": nll, "tokens": tokens, "correct": correct}


def pairs(model, requests):
    out = []
    for context, continuation in requests:
        ids = torch.tensor([context + continuation], dtype=torch.long)
        with torch.no_grad():
            logits = model(ids).logits[0, -len(continuation) - 1:-1].double()
        cont = torch.tensor(continuation)
        lp = torch.log_softmax(logits, -1).gather(-1, cont.unsqueeze(-1)).squeeze(-1)
        out.append([lp.sum().item(), bool((logits.argmax(-1) == cont).all())])
    return out


if __name__ == "__main__":
    mode, folder = sys.argv[1], sys.argv[2]
    model = load(folder)
    data = json.load(open(sys.argv[3]))
    result = perplexity(model, data, int(sys.argv[4]), int(sys.argv[5])) if mode == "perplexity" else pairs(model, data)
    print(json.dumps(result))
