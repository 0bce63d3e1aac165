"""transformers' Llama / Qwen2 / Qwen3 on the weights and tokens llama_torch.test.ts writes: logits,
loss and every parameter's gradient, for the test to compare with ours. Reads the JSON file named by
argv[1] (a list of {spec, ids, shape [N, T], labels, params: {name: {shape, values}}}) and writes
the list of results to argv[2] (one process: importing transformers takes seconds)."""
import json
import sys

import torch
import transformers


def config_of(s):
    cfg = dict(vocab_size=s['vocabSize'], hidden_size=s['width'], intermediate_size=s['intermediate'],
               num_hidden_layers=s['layers'], num_attention_heads=s['heads'], num_key_value_heads=s['kvHeads'],
               head_dim=s['headDim'], max_position_embeddings=s['context'], rms_norm_eps=s['rmsEps'],
               rope_theta=s['ropeTheta'], tie_word_embeddings=s['tieEmbeddings'], attention_dropout=0.0)
    if s['ropeScaling']:
        r = s['ropeScaling']
        cfg['rope_scaling'] = dict(rope_type='llama3', factor=r['factor'], low_freq_factor=r['lowFreqFactor'],
                                   high_freq_factor=r['highFreqFactor'], original_max_position_embeddings=r['originalContext'])
    kinds = {'llama': (transformers.LlamaConfig, transformers.LlamaForCausalLM),
             'qwen2': (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
             'qwen3': (transformers.Qwen3Config, transformers.Qwen3ForCausalLM)}
    config_class, model_class = kinds[s['modelType']]
    config = config_class(**cfg)
    config._attn_implementation = 'eager'
    return config, model_class


def reference(inp):
    spec = inp['spec']
    config, model_class = config_of(spec)
    model = model_class(config).float()
    state = {n: torch.tensor(p['values'], dtype=torch.float32).reshape(p['shape']) for n, p in inp['params'].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # A tied head is the embedding itself: no lm_head.weight in our names, none needed.
    missing = [n for n in missing if not (spec['tieEmbeddings'] and n == 'lm_head.weight')]
    if missing or unexpected:
        raise SystemExit(f'names differ: missing {missing}, unexpected {unexpected}')
    ids = torch.tensor(inp['ids']).reshape(inp['shape'])
    logits = model(ids).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, spec['vocabSize']), torch.tensor(inp['labels']))
    loss.backward()
    grads = {n: p.grad.flatten().tolist() for n, p in model.named_parameters()}
    return {'logits': logits.detach().flatten().tolist(), 'loss': loss.item(), 'grads': grads}


json.dump([reference(inp) for inp in json.load(open(sys.argv[1]))], open(sys.argv[2], 'w'))
