"""transformers' MixtralForCausalLM on the Hugging Face folders mixtral_torch.test.ts writes (eager
attention, float32, output_router_logits): logits, the load-balancing aux_loss, the training loss
(cross-entropy on the given labels + router_aux_loss_coef x aux_loss) and every parameter's gradient,
under our (Mixtral checkpoint) names. Reads the JSON list named by argv[1] ({dir, ids, shape [N, T],
labels}), writes the results to argv[2]: one process for every case (importing transformers takes seconds)."""
import json
import sys

import torch
import transformers


def our_names(name, grad, intermediate):
    """transformers 5 fuses each layer's experts; the checkpoints (and we) keep experts.{i}.w1/w2/w3."""
    name = name.replace('.mlp.', '.block_sparse_moe.')
    if name.endswith('.experts.gate_up_proj'):
        base = name[: -len('gate_up_proj')]
        out = {}
        for e in range(grad.shape[0]):
            out[f'{base}{e}.w1.weight'] = grad[e, :intermediate]
            out[f'{base}{e}.w3.weight'] = grad[e, intermediate:]
        return out
    if name.endswith('.experts.down_proj'):
        base = name[: -len('down_proj')]
        return {f'{base}{e}.w2.weight': grad[e] for e in range(grad.shape[0])}
    return {name: grad}


def reference(inp):
    model = transformers.MixtralForCausalLM.from_pretrained(inp['dir'], torch_dtype=torch.float32, attn_implementation='eager')
    model.train()  # dropout is 0; train mode as our training step
    config = model.config
    ids = torch.tensor(inp['ids']).reshape(inp['shape'])
    out = model(ids, output_router_logits=True)
    ce = torch.nn.functional.cross_entropy(out.logits.reshape(-1, config.vocab_size), torch.tensor(inp['labels']))
    loss = ce + config.router_aux_loss_coef * out.aux_loss
    loss.backward()
    grads = {}
    for n, p in model.named_parameters():
        for name, g in our_names(n, p.grad, config.intermediate_size).items():
            grads[name] = g.flatten().tolist()
    return {'logits': out.logits.detach().flatten().tolist(), 'aux': out.aux_loss.item(), 'loss': loss.item(), 'grads': grads}


json.dump([reference(inp) for inp in json.load(open(sys.argv[1]))], open(sys.argv[2], 'w'))
