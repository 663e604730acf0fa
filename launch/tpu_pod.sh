#!/usr/bin/env bash
# Train on a Cloud TPU VM pod slice: one process per TPU VM worker, all in one
# JAX job (`--distributed`: jax.distributed.initialize() finds the other
# workers through the TPU metadata).
#
# Usage:
#   launch/tpu_pod.sh TPU_NAME ZONE ACCELERATOR_TYPE RUNTIME_VERSION CONFIG WORKDIR [EXTRA_FLAG ...]
#
#   TPU_NAME          name of the TPU VM (created if it does not exist, else reused)
#   ZONE              e.g. us-central2-b
#   ACCELERATOR_TYPE  e.g. v4-32, v5p-16, v5litepod-16, v6e-16
#   RUNTIME_VERSION   TPU VM image, e.g. tpu-ubuntu2204-base (v4),
#                     v2-alpha-tpuv5 (v5p), v2-alpha-tpuv5-lite (v5e), v2-alpha-tpuv6e (v6e)
#   CONFIG            config file and arguments, e.g. configs/celeba.py or configs/mnist.py:k=10
#   WORKDIR           gs://BUCKET/runs/NAME; every worker reads and writes it, so on a
#                     slice with more than one worker it must be a gs:// path
#   EXTRA_FLAG ...    passed on to competitive_mixtures.main, e.g. --config.num_rounds=20
#
# Environment (all optional):
#   PROJECT           GCP project (default: `gcloud config get-value project`)
#   DATA_GCS          gs:// tfds data dir (the --data_dir given to `tfds build`); it is
#                     copied to LOCAL_DATA_DIR on every worker and the run gets
#                     --config.data.data_dir=LOCAL_DATA_DIR (array_record files are read
#                     from local disk: the released array_record reader cannot open gs://)
#   DATASETS          space-separated subfolders of DATA_GCS to copy (default: all), e.g. celeb_a
#   LOCAL_DATA_DIR    where workers keep the copy (default: ~/tensorflow_datasets on the worker)
#   SPOT=1            create the TPU as a Spot VM (cheaper; may be preempted; rerun to resume)
#   SOURCE_TARBALL    a .tar.gz of the repository to ship instead of `git archive HEAD`
#   PYTHON_VERSION    Python for the workers' virtualenv (default 3.12; JAX needs >= 3.11)
#   EXTRA_PIP         further pip requirements for the workers (default: "etils[epath] gcsfs")
#   RUN_NAME          names the log files (default: last component of WORKDIR)
#   CHECK_AFTER       seconds to wait before checking that every worker is running (default 60; 0 skips)
#
# Rerunning the same command resumes: the TPU is reused, code and packages are
# refreshed, and main continues from the newest checkpoint in WORKDIR.

set -euo pipefail

usage() {
  sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

[[ $# -ge 6 ]] || usage
TPU_NAME=$1
ZONE=$2
ACCELERATOR_TYPE=$3
RUNTIME_VERSION=$4
CONFIG=$5
WORKDIR=$6
shift 6
EXTRA_FLAGS=("$@")

command -v gcloud >/dev/null || { echo "error: gcloud not found (https://cloud.google.com/sdk/docs/install)" >&2; exit 1; }

PROJECT=${PROJECT:-$(gcloud config get-value project 2>/dev/null || true)}
[[ -n $PROJECT ]] || { echo "error: set PROJECT=... or run: gcloud config set project YOUR_PROJECT" >&2; exit 1; }

RUN_NAME=${RUN_NAME:-$(basename "${WORKDIR%/}")}
LAUNCH_ID=$(date -u +%Y%m%d-%H%M%S)
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
EXTRA_PIP=${EXTRA_PIP:-etils[epath] gcsfs}
CHECK_AFTER=${CHECK_AFTER:-60}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GC=(--zone="$ZONE" --project="$PROJECT")

echo "== project $PROJECT, TPU $TPU_NAME ($ACCELERATOR_TYPE, $RUNTIME_VERSION) in $ZONE"

# The number of JAX devices of the slice: batch_size must divide by it.
accel_family=${ACCELERATOR_TYPE%-*}
accel_count=${ACCELERATOR_TYPE##*-}
case $accel_family in
  v4 | v5p) devices=$((accel_count / 2)) ;; # the number counts TensorCores; 2 per chip (megacore)
  *) devices=$accel_count ;;
esac
echo "== $ACCELERATOR_TYPE has $devices JAX devices: config.batch_size (and disc.batch_size," \
  "assign.batch_size) must be multiples of $devices"

# ---------------------------------------------------------------- the TPU VM
if state=$(gcloud compute tpus tpu-vm describe "$TPU_NAME" "${GC[@]}" --format='value(state)' 2>/dev/null); then
  existing_type=$(gcloud compute tpus tpu-vm describe "$TPU_NAME" "${GC[@]}" --format='value(acceleratorType)')
  echo "== reusing $TPU_NAME (state $state, $existing_type)"
  if [[ ${existing_type##*/} != "$ACCELERATOR_TYPE" ]]; then
    echo "warning: $TPU_NAME is a ${existing_type##*/}, not $ACCELERATOR_TYPE; using it as it is" >&2
  fi
  case $state in
    READY) ;;
    PREEMPTED | TERMINATED)
      echo "error: $TPU_NAME is $state and cannot be restarted. Delete it and rerun this command" \
        "(training resumes from the checkpoints in $WORKDIR):" >&2
      echo "  gcloud compute tpus tpu-vm delete $TPU_NAME --zone=$ZONE --project=$PROJECT --quiet" >&2
      exit 1 ;;
    *)
      echo "error: $TPU_NAME is $state, not READY; wait, or delete it and rerun" >&2
      exit 1 ;;
  esac
else
  echo "== creating $TPU_NAME"
  create_flags=(--accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION"
    --scopes=https://www.googleapis.com/auth/cloud-platform)
  [[ ${SPOT:-0} == 1 ]] && create_flags+=(--spot)
  gcloud compute tpus tpu-vm create "$TPU_NAME" "${GC[@]}" "${create_flags[@]}"
fi

workers=$(gcloud compute tpus tpu-vm describe "$TPU_NAME" "${GC[@]}" --format='value(networkEndpoints.len())')
echo "== $workers worker(s)"
if [[ $WORKDIR != gs://* ]]; then
  if [[ ${workers:-1} -gt 1 ]]; then
    echo "error: WORKDIR must be a gs:// path on a slice with $workers workers (all of them" \
      "write checkpoints there)" >&2
    exit 1
  fi
  echo "warning: WORKDIR $WORKDIR is on the worker's own disk and goes when the TPU is deleted" >&2
fi

# ------------------------------------------------------------------ ssh keys
# gcloud creates and propagates its key on a first single-worker ssh; commands
# on several workers at once need the key in an ssh agent.
gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GC[@]}" --worker=0 --command=true
started_agent=
if ! ssh-add -l >/dev/null 2>&1; then
  eval "$(ssh-agent -s)" >/dev/null
  started_agent=$SSH_AGENT_PID
fi
ssh-add -q "$HOME/.ssh/google_compute_engine" 2>/dev/null || true

# ------------------------------------------------- files for every worker
stage=$(mktemp -d)
cleanup() {
  rm -rf "$stage"
  if [[ -n $started_agent ]]; then kill "$started_agent" 2>/dev/null || true; fi
}
trap cleanup EXIT
mkdir "$stage/cm_launch"

if [[ -n ${SOURCE_TARBALL:-} ]]; then
  cp "$SOURCE_TARBALL" "$stage/cm_launch/src.tar.gz"
  echo "== shipping $SOURCE_TARBALL"
else
  if [[ -n $(git -C "$REPO_ROOT" status --porcelain --untracked-files=no) ]]; then
    echo "warning: uncommitted changes in $REPO_ROOT are NOT shipped (git archive HEAD);" \
      "commit them, or set SOURCE_TARBALL" >&2
  fi
  git -C "$REPO_ROOT" archive --format=tar.gz -o "$stage/cm_launch/src.tar.gz" HEAD
  echo "== shipping $(git -C "$REPO_ROOT" rev-parse --short HEAD) of $REPO_ROOT"
fi

# Settings shared by the worker scripts, quoted for bash.
run_args=(--config="$CONFIG" --workdir="$WORKDIR" --distributed)
{
  printf '# shellcheck shell=bash disable=SC2034\n'
  printf 'PYTHON_VERSION=%q\n' "$PYTHON_VERSION"
  printf 'EXTRA_PIP=%q\n' "$EXTRA_PIP"
  printf 'DATA_GCS=%q\n' "${DATA_GCS:-}"
  printf 'DATASETS=%q\n' "${DATASETS:-}"
  printf 'LOCAL_DATA_DIR=%q\n' "${LOCAL_DATA_DIR:-}"
  printf 'RUN_NAME=%q\n' "$RUN_NAME"
  printf 'LAUNCH_ID=%q\n' "$LAUNCH_ID"
  printf 'RUN_ARGS=('; printf ' %q' "${run_args[@]}"; printf ' )\n'
  printf 'EXTRA_FLAGS=('
  [[ ${#EXTRA_FLAGS[@]} -eq 0 ]] || printf ' %q' "${EXTRA_FLAGS[@]}"
  printf ' )\n'
} >"$stage/cm_launch/settings.sh"

# Common part of the worker scripts.
cat >"$stage/cm_launch/common.sh" <<'EOF'
# shellcheck shell=bash disable=SC2034
SRC=$HOME/competitive_mixtures
VENV=$HOME/cm-venv
LOGS=$HOME/cm_logs
LOCAL_DATA_DIR=${LOCAL_DATA_DIR:-$HOME/tensorflow_datasets}
PIDFILE=$LOGS/current.pid
WORKER=$(curl -sf -H 'Metadata-Flavor: Google' \
  http://metadata.google.internal/computeMetadata/v1/instance/attributes/agent-worker-number \
  || hostname)
mkdir -p "$LOGS"
running_pid() {  # prints the pid of this worker's live training process, if any
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null && grep -qa competitive_mixtures "/proc/$pid/cmdline" && echo "$pid"
}
EOF

cat >"$stage/cm_launch/setup.sh" <<'EOF'
set -euo pipefail
cd "$HOME"
source cm_launch/settings.sh
source cm_launch/common.sh
if pid=$(running_pid); then
  echo "error: worker $WORKER still runs a training process (pid $pid); stop it first with" \
    "bash ~/cm_launch/stop.sh on every worker" >&2
  exit 3
fi
rm -rf "$SRC"
mkdir -p "$SRC"
tar -xzf cm_launch/src.tar.gz -C "$SRC"
export PATH=$HOME/.local/bin:$PATH
if ! command -v uv >/dev/null; then
  python3 -m pip install --user --quiet --upgrade uv || curl -LsSf https://astral.sh/uv/install.sh | sh
fi
[[ -x $VENV/bin/python ]] || uv venv --quiet --seed --python "$PYTHON_VERSION" "$VENV"
read -r -a extra_pip <<<"${EXTRA_PIP:-}"
uv pip install --quiet --python "$VENV/bin/python" -e "${SRC}[tfds]" 'jax[tpu]' "${extra_pip[@]}"
if [[ -n $DATA_GCS ]]; then
  mkdir -p "$LOCAL_DATA_DIR"
  copy() {
    if gcloud storage --help >/dev/null 2>&1; then
      gcloud storage rsync --recursive --quiet "$1" "$2"
    else
      gsutil -q -m rsync -r "$1" "$2"
    fi
  }
  read -r -a datasets <<<"${DATASETS:-}"
  if [[ ${#datasets[@]} -gt 0 ]]; then
    for name in "${datasets[@]}"; do
      mkdir -p "$LOCAL_DATA_DIR/$name"
      copy "${DATA_GCS%/}/$name" "$LOCAL_DATA_DIR/$name"
    done
  else
    copy "$DATA_GCS" "$LOCAL_DATA_DIR"
  fi
fi
echo "worker $WORKER: ready ($("$VENV/bin/python" -c 'import jax; print("jax", jax.__version__)'))"
EOF

cat >"$stage/cm_launch/run.sh" <<'EOF'
set -euo pipefail
cd "$HOME"
source cm_launch/settings.sh
source cm_launch/common.sh
if pid=$(running_pid); then
  echo "error: worker $WORKER already runs a training process (pid $pid)" >&2
  exit 3
fi
args=("${RUN_ARGS[@]}")
[[ -n $DATA_GCS ]] && args+=(--config.data.data_dir="$LOCAL_DATA_DIR")
args+=("${EXTRA_FLAGS[@]}")
log=$LOGS/$RUN_NAME-$LAUNCH_ID-w$WORKER.log
cd "$SRC"
echo "$(date -u) worker $WORKER: python -m competitive_mixtures.main ${args[*]}" >"$log"
nohup "$VENV/bin/python" -m competitive_mixtures.main "${args[@]}" >>"$log" 2>&1 </dev/null &
echo $! >"$PIDFILE"
ln -sfn "$log" "$LOGS/latest.log"
echo "worker $WORKER: started pid $!, log $log"
EOF

cat >"$stage/cm_launch/status.sh" <<'EOF'
set -uo pipefail
cd "$HOME" || exit 1
source cm_launch/common.sh
if pid=$(running_pid); then state="running (pid $pid)"; else state="NOT running"; fi
echo "---- worker $WORKER: $state; $(readlink -f "$LOGS/latest.log" 2>/dev/null)"
tail -n "${1:-5}" "$LOGS/latest.log" 2>/dev/null
true
EOF

cat >"$stage/cm_launch/stop.sh" <<'EOF'
set -uo pipefail
cd "$HOME" || exit 1
source cm_launch/common.sh
if pid=$(running_pid); then
  kill "$pid"
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  echo "worker $WORKER: stopped pid $pid"
else
  echo "worker $WORKER: nothing running"
fi
true
EOF

# ----------------------------------------------------- copy, install, run
echo "== copying code to all workers"
gcloud compute tpus tpu-vm scp --recurse "$stage/cm_launch" "$TPU_NAME:" "${GC[@]}" --worker=all

ssh_cmd="gcloud compute tpus tpu-vm ssh $TPU_NAME --zone=$ZONE --project=$PROJECT"
echo "== installing on all workers (first time: a few minutes)"
if ! gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GC[@]}" --worker=all --command='bash ~/cm_launch/setup.sh'; then
  echo "error: setup failed on a worker (see above). If a previous run is still alive, stop it with" >&2
  echo "  $ssh_cmd --worker=all --command='bash ~/cm_launch/stop.sh'" >&2
  exit 1
fi

echo "== starting training on all workers"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GC[@]}" --worker=all --command='bash ~/cm_launch/run.sh'

if [[ $CHECK_AFTER -gt 0 ]]; then
  echo "== waiting ${CHECK_AFTER}s, then checking every worker"
  sleep "$CHECK_AFTER"
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GC[@]}" --worker=all --command='bash ~/cm_launch/status.sh 5'
fi

cat <<EOF

Training runs in the background on all $workers worker(s); results go to $WORKDIR.
Only worker 0 (process 0) writes metrics, figures and assignments.npz; its log has the progress.

  follow worker 0:      $ssh_cmd --worker=0 --command='tail -f ~/cm_logs/latest.log'
  every worker:         $ssh_cmd --worker=all --command='bash ~/cm_launch/status.sh 20'
  stop the run:         $ssh_cmd --worker=all --command='bash ~/cm_launch/stop.sh'
  resume / rerun:       rerun this same command (it continues from the newest checkpoint)
  delete the TPU:       gcloud compute tpus tpu-vm delete $TPU_NAME --zone=$ZONE --project=$PROJECT --quiet
EOF
