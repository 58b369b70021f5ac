#!/usr/bin/env bash
# A one-node Slurm cluster on localhost that runs deploy/slurm/ for real: it installs Debian's
# slurm-wlm and munge when missing (apt-get, as root), starts munged, slurmctld and slurmd with
# a minimal slurm.conf (state, logs and the munge socket under $WORK; nothing in /etc changes
# but the packages), submits a 4-task robustness array plus the dependent merge through
# deploy/slurm/submit.sh, waits, runs the same settings in one process, and checks that the
# merged summary.json equals the single run's. The daemons are stopped on exit, whatever happens.
#
#   scripts/slurm-local.sh            # WORK=/tmp/cnnlab-slurm-local (wiped first)
#
# The comparison leaves out two fields of summary.json, and only these:
#   created  the time the summary was written: differs between any two runs;
#   shards   {merged: [0,1,2,3], of: 4} for the merge, null for the single run: it says how the
#            run was made, which is the one thing meant to differ.
# Everything else (every metric, the settings, the preprocessing) must be equal, as JSON.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-/tmp/cnnlab-slurm-local}
SHARDS=4
# A small run: random weights on the built-in model, 1 image per class (10 images), two
# corruptions at severity 3, the model's own resolution only, no sweeps.
ARGS=(--runtime node --model mobilenet_v2_synth --weights random --per-class 1
  --corruptions gaussian_noise,contrast --severities 3 --sweeps none --resolutions 112 --batch 8)

say() { echo "[slurm-local] $*"; }
die() { echo "[slurm-local] FAILED: $*" >&2; exit 1; }

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
  || ! command -v munged >/dev/null; then
  [ "$(id -u)" = 0 ] || die "slurm-wlm and munge are missing and installing them needs root"
  say "installing slurm-wlm and munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
say "$(slurmctld -V), munge $(munged -V 2>&1 | awk '{print $2}')"
[ -f "$repo/dist/cli.mjs" ] || (cd "$repo" && node build.mjs)

# 2. Configuration: one node, this machine, no cgroups, no accounting.
rm -rf "$WORK"
mkdir -p "$WORK"/{munge,state,spool,log,runs}
chmod 700 "$WORK/munge"
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
port=${SLURM_LOCAL_PORT:-16817}
export SLURM_CONF=$WORK/slurm.conf
cat > "$SLURM_CONF" <<CONF
ClusterName=cnnlab-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WORK/munge/munge.socket
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

# 3. Daemons; stopped on exit.
pids=()
array= merge=
cleanup() {
  [ -n "$array$merge" ] && scancel $array $merge 2>/dev/null && sleep 2
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
mungekey --create --keyfile="$WORK/munge/munge.key" 2>/dev/null \
  || dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$WORK/munge/munge.key"
munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/munge.socket" \
  --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/log/munged.log" --seed-file="$WORK/munge/seed" \
  >"$WORK/log/munged.stderr" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$WORK/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$WORK/munge/munge.socket" ] || die "munged did not start: $(tail -3 "$WORK/log/munged.log" 2>/dev/null)"
# In the foreground (-D), so that no daemon outlives this script; they log to $WORK/log.
slurmctld -D -f "$SLURM_CONF" >"$WORK/log/slurmctld.stderr" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$WORK/log/slurmd.stderr" 2>&1 &
pids+=($!)
up=
for _ in $(seq 60); do
  if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then up=1; break; fi
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || break 2; done
  sleep 1
done
if [ -z "$up" ]; then
  # The daemons' own reason; the PMIx, MailProg and missing-state-file errors are harmless and always there.
  why=$(grep -hiE 'error|fatal' "$WORK"/log/slurm*.log "$WORK"/log/slurm*.stderr 2>/dev/null \
    | grep -viE 'pmix|MPI|MailProg|state file|backup state' | tail -5)
  die "the one-node cluster did not come up: ${why:-no error in $WORK/log}"
fi
say "cluster up: $(sinfo -h -o '%P %D node %N %t, %c CPUs, %m MB')"

# 4. The array job and the dependent merge, through deploy/slurm/submit.sh.
cd "$WORK"
export CNNLAB="node $repo/bin/cnnlab.mjs" CNNLAB_RUNS=$WORK/runs
read -r array merge < <("$repo/deploy/slurm/submit.sh" -n "$SHARDS" demo "${ARGS[@]}")
say "submitted array job $array ($SHARDS tasks) and merge job $merge (afterok:$array)"

# 5. Meanwhile, the same settings in one process, outside Slurm.
start=$SECONDS
node "$repo/bin/cnnlab.mjs" robustness "${ARGS[@]}" --out "$WORK/runs/single" > "$WORK/log/single.out" 2>&1 \
  || die "the single-process run failed: $(tail -5 "$WORK/log/single.out")"
say "single-process run done in $((SECONDS - start)) s"

# 6. Wait for the merge.
while squeue -h -j "$array,$merge" 2>/dev/null | grep -q .; do sleep 5; done
state() { scontrol show job "$1" 2>/dev/null | grep -oE 'JobState=[A-Z_]+' | sort | uniq -c | tr '\n' ' '; }
say "array job: $(state "$array")· merge job: $(state "$merge")"
for f in "$WORK"/cnnlab-*.out; do
  say "--- $(basename "$f")"
  grep -vE '^\s*[░█]' "$f" | grep -E 'task|merg|warning|rror|wrote' | sed 's/^/    /' || true
done
[ -f "$WORK/runs/demo/summary.json" ] || die "the merge wrote no $WORK/runs/demo/summary.json"

# 7. The merged summary equals the single run's, but for created and shards.
node --input-type=module - "$WORK/runs/demo/summary.json" "$WORK/runs/single/summary.json" <<'JS'
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
const [merged, single] = process.argv.slice(2).map((f) => JSON.parse(readFileSync(f, 'utf8')));
const show = JSON.stringify;
console.log(`[slurm-local] merged shards: ${show(merged.shards)}; single run: ${show(single.shards)}`);
if (JSON.stringify(merged.shards) !== '{"merged":[0,1,2,3],"of":4}') {
  console.error('[slurm-local] FAILED: the merge did not merge shards 0-3 of 4');
  process.exit(1);
}
const strip = ({ created, shards, ...rest }) => rest;
if (!isDeepStrictEqual(strip(merged), strip(single))) {
  const a = strip(merged), b = strip(single);
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!isDeepStrictEqual(a[k], b[k])) console.error(`  ${k}: merged ${show(a[k])}\n  ${k}: single ${show(b[k])}`);
  }
  console.error('[slurm-local] FAILED: the merged summary differs from the single-process run');
  process.exit(1);
}
const n = merged.clean?.n, top1 = merged.clean?.top1;
console.log('[slurm-local] OK: merged summary.json equals the single-process run\'s in all fields but created and shards '
  + `(clean n=${n}, top-1 ${top1})`);
JS
