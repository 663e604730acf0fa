#!/usr/bin/env bash
# Train on one machine with all of its GPUs: one process that sees every local
# GPU; the `data` mesh spans them, and batches are split across them.
#
# Usage:
#   launch/gpu.sh CONFIG WORKDIR [EXTRA_FLAG ...]
#
#   CONFIG          config file and arguments, e.g. configs/celeba.py or configs/mnist.py:k=10
#   WORKDIR         run directory (local path, or gs://... with GCS access)
#   EXTRA_FLAG ...  passed on to competitive_mixtures.main, e.g. --config.batch_size=256
#
# Environment (all optional):
#   PYTHON                          interpreter with the package installed (default: python)
#   CUDA_VISIBLE_DEVICES            restrict the run to some GPUs, e.g. 0,1
#   XLA_PYTHON_CLIENT_MEM_FRACTION  share of each GPU's memory JAX reserves (default here 0.90;
#                                   JAX's own default is 0.75)
#   LOG                             also write the output to this file
#                                   (default: WORKDIR/launch.log for a local WORKDIR)
#
# Rerunning the same command resumes from the newest checkpoint in WORKDIR.

set -euo pipefail

usage() {
  sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

[[ $# -ge 2 ]] || usage
CONFIG=$1
WORKDIR=$2
shift 2
EXTRA_FLAGS=("$@")
PYTHON=${PYTHON:-python}

cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v nvidia-smi >/dev/null || { echo "error: nvidia-smi not found; is this a GPU machine with the NVIDIA driver?" >&2; exit 1; }
echo "== GPUs on $(hostname):"
nvidia-smi -L
if [[ -n ${CUDA_VISIBLE_DEVICES:-} ]]; then
  IFS=, read -r -a visible <<<"$CUDA_VISIBLE_DEVICES"
  num_gpus=${#visible[@]}
  echo "== CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES: using $num_gpus of them"
else
  num_gpus=$(nvidia-smi -L | grep -c '^GPU')
  echo "== using all $num_gpus"
fi
[[ $num_gpus -gt 0 ]] || { echo "error: no GPU visible" >&2; exit 1; }

# JAX preallocates this share of every GPU's memory at start-up.
if [[ -z ${XLA_PYTHON_CLIENT_MEM_FRACTION:-} && -z ${XLA_PYTHON_CLIENT_PREALLOCATE:-} ]]; then
  export XLA_PYTHON_CLIENT_MEM_FRACTION=0.90
fi
echo "== XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-unset}"

# The batch sizes must split evenly over the GPUs (main refuses otherwise);
# check before JAX starts. `--config.FIELD=VALUE` overrides are taken into account.
"$PYTHON" - "$CONFIG" "$num_gpus" "${EXTRA_FLAGS[@]}" <<'EOF' || exit 1
import importlib.util
import sys

config_arg, num_gpus, flags = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
path, _, arg = config_arg.partition(":")
try:
    spec = importlib.util.spec_from_file_location("launch_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg) if arg else module.get_config()
except Exception as error:  # main reports config problems itself
    print(f"== (batch-size check skipped: could not read {config_arg}: {error})")
    sys.exit(0)
fields = {"batch_size": None, "disc.batch_size": None, "assign.batch_size": None}
for field in fields:
    try:
        value = config
        for part in field.split("."):
            value = value[part]
        fields[field] = int(value)
    except (KeyError, AttributeError, TypeError, ValueError):
        pass
for flag in flags:
    name, eq, value = flag.partition("=")
    if eq and name.startswith("--config.") and name[len("--config."):] in fields:
        fields[name[len("--config."):]] = int(value)
bad = {f: v for f, v in fields.items() if v is not None and v % num_gpus}
for field, value in fields.items():
    if value is not None:
        print(f"== config.{field}={value} ({value // num_gpus} per GPU)" if field not in bad
              else f"error: config.{field}={value} is not a multiple of {num_gpus} GPUs; "
                   f"use a multiple, e.g. --config.{field}={(value // num_gpus + 1) * num_gpus}")
sys.exit(1 if bad else 0)
EOF

args=(--config="$CONFIG" --workdir="$WORKDIR" "${EXTRA_FLAGS[@]}")
if [[ -z ${LOG:-} && $WORKDIR != *://* ]]; then
  mkdir -p "$WORKDIR"
  LOG=$WORKDIR/launch.log
fi
echo "== $PYTHON -m competitive_mixtures.main ${args[*]}"
if [[ -n ${LOG:-} ]]; then
  echo "== output also goes to $LOG"
  echo "$(date -u) $PYTHON -m competitive_mixtures.main ${args[*]}" >>"$LOG"
  set +e
  "$PYTHON" -m competitive_mixtures.main "${args[@]}" 2>&1 | tee -a "$LOG"
  status=${PIPESTATUS[0]}
  set -e
  exit "$status"
fi
exec "$PYTHON" -m competitive_mixtures.main "${args[@]}"
