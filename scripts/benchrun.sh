#!/usr/bin/env bash
# scripts/benchrun.sh CMD...: run a benchmark holding the machine's bench lock
# (/tmp/smolcluster-bench.lock, so two benchmarks never share the cores) and, where a cgroup v1 cpu
# controller is writable (Linux, root), in a group whose CPU weight (cpu.shares 262144, the most)
# beats every ordinary process: builds and tests beside it barely slow it. Without one, the lock only.
set -euo pipefail
if [ "$#" -eq 0 ]; then
  echo "usage: scripts/benchrun.sh COMMAND [ARGS...]" >&2
  exit 2
fi
group=/sys/fs/cgroup/cpu/smolcluster-bench
if mkdir -p "$group" 2>/dev/null && echo 262144 > "$group/cpu.shares" 2>/dev/null && echo $$ > "$group/cgroup.procs" 2>/dev/null; then
  :
else
  echo "benchrun: no writable cgroup v1 cpu controller: the bench lock only" >&2
fi
exec flock /tmp/smolcluster-bench.lock "$@"
