#!/usr/bin/env bash
# Every registered model at full size, random weights, batch 2 at 224×224: cnnlab (Node and
# headless Chromium) against PyTorch on the same checkpoint and input. Needs Debian's
# python3-torch and python3-torchvision (apt-get install -y python3-torch python3-torchvision).
#   scripts/validate-full-size.sh [model ...]     (default: all registered names)
set -euo pipefail
cd "$(dirname "$0")/.."
node build.mjs
models=("$@")
[ ${#models[@]} -gt 0 ] || mapfile -t models < <(node bin/cnnlab.mjs models | awk '{print $1}')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 -c "
import numpy as np, sys; sys.path.insert(0, 'tests/fixtures'); from common import test_input
np.save('$tmp/x.npy', test_input((2, 3, 224, 224), 7).numpy())"
status=0
for m in "${models[@]}"; do
  node bin/cnnlab.mjs random-weights --model "$m" --seed 1 --out "$tmp/w.safetensors" >/dev/null
  for rt in node chrome; do
    /usr/bin/time -f "$m $rt: %e s wall" node bin/cnnlab.mjs infer --model "$m" --weights "$tmp/w.safetensors" \
      --input "$tmp/x.npy" --output "$tmp/y-$rt.npy" --runtime "$rt" 2>&1 | grep -E 'wall|compiled|logits' || true
  done
  /usr/bin/python3 tests/fixtures/validate_full_size.py --model "$m" --weights "$tmp/w.safetensors" \
    --input "$tmp/x.npy" --out "$tmp/ref.npy" --compare "$tmp/y-node.npy" "$tmp/y-chrome.npy" || status=1
done
exit $status
