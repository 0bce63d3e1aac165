"""The training-step timing loop bench:models' torch references share (models_torch.py, llama_torch.py).

One untimed warm-up step, then `steps` timed ones: wall and CPU milliseconds per step, the median wall
time, and the last loss. `loss_fn()` runs the forward and returns the loss, under bf16 autocast when
asked (torch's one-line mixed precision; the backward follows the forward's dtypes).
"""
import time
import torch


def timed_steps(steps, opt, loss_fn, bf16):
    times, cpu, loss = [], [], float("nan")
    for s in range(steps + 1):
        t0 = time.perf_counter()
        c0 = time.process_time()
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            l = loss_fn()
        l.backward()
        opt.step()
        loss = l.item()
        if s > 0:
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    st = sorted(times)
    median = st[len(st) // 2] if len(st) % 2 else (st[len(st) // 2 - 1] + st[len(st) // 2]) / 2
    return times, cpu, median, loss
