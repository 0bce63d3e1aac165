"""This core's single-thread read bandwidth as numpy measures it (a float32 sum over 2 GiB, far beyond
the last-level cache; numpy's sum is vectorised, one thread), beside bench/lib/read_bandwidth.ts's:
bench:generate takes the faster as decode's memory-bandwidth bound. One JSON line, GB/s = 1e9 bytes/s."""
import json, time
import numpy as np

a = np.full(2 ** 29, 1.0, dtype=np.float32)
a.sum()
passes, cpu = [], []
for _ in range(4):
    t0, c0 = time.perf_counter(), time.process_time()
    a.sum()
    passes.append(a.nbytes / (time.perf_counter() - t0) / 1e9)
    cpu.append(a.nbytes / max(time.process_time() - c0, 1e-9) / 1e9)
print(json.dumps({"gbPerSec": max(passes), "passes": passes, "gbPerCpuSec": max(cpu), "bytes": a.nbytes, "how": "numpy float32 sum"}))
