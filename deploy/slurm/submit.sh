#!/usr/bin/env bash
# Submit a sharded robustness run to Slurm: an array job of N shards, then the merge, which runs
# only when every shard succeeded (--dependency=afterok).
#
#   deploy/slurm/submit.sh [-n SHARDS] NAME [robustness options…]
#   deploy/slurm/submit.sh -n 8 r50 --model resnet50 --weights r50.safetensors --data /data/val
#
# Shards go to $CNNLAB_RUNS/NAME-0 … NAME-(N−1) (default runs/), the merged run to
# $CNNLAB_RUNS/NAME. Prints the two job ids (array first) on stdout. Extra sbatch options come
# from sbatch's own variables (SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_TIMELIMIT, …).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shards=4
if [ "${1:-}" = -n ]; then
  shards=$2
  shift 2
fi
if [ $# -lt 1 ] || ! [[ $shards =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [-n SHARDS] NAME [robustness options…]" >&2
  exit 2
fi
name=$1
array=$(sbatch --parsable --array=0-$((shards - 1)) "$here/robustness.sbatch" "$@")
array=${array%%;*} # --parsable prints JOBID[;CLUSTER]
merge=$(sbatch --parsable --dependency=afterok:"$array" "$here/merge.sbatch" "$name")
merge=${merge%%;*}
echo "$array $merge"
echo "array job $array ($shards shards), merge job $merge (after all succeed)" >&2
