"""Train the built-in demo model: torchvision MobileNetV2 (width 0.35) on cnnlab's synthetic
object classes, at 112×112, on the CPU. Its weights ship as models/weights/mobilenet_v2_synth.safetensors
and are what `npm run demo` evaluates. Run once (minutes on 2 cores); not part of CI.

    node bin/cnnlab.mjs synth --out /tmp/synth-train --per-class 400
    node bin/cnnlab.mjs synth --out /tmp/synth-val --per-class 50 --split val
    /usr/bin/python3 scripts/train_synth_model.py --train /tmp/synth-train --val /tmp/synth-val

Preprocessing matches the model's registry entry (models/mobilenetv2.ts, `mobilenet_v2_synth`):
the 224×224 synthetic images squashed to 112 (bilinear with antialias, as PIL), ImageNet mean/std.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'tests' / 'fixtures'))
from common import save_safetensors  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
SIZE = 112


def load_folder(root, classes=None):
    root = Path(root)
    classes = classes or sorted(p.name for p in root.iterdir() if p.is_dir())
    xs, ys = [], []
    for i, c in enumerate(classes):
        for f in sorted((root / c).glob('*.png')):
            img = Image.open(f).convert('RGB').resize((SIZE, SIZE), Image.BILINEAR)
            xs.append(np.asarray(img, dtype=np.uint8))
            ys.append(i)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255
    return (x - MEAN) / STD, torch.tensor(ys), classes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--train', required=True)
    ap.add_argument('--val', required=True)
    ap.add_argument('--epochs', type=int, default=12)
    ap.add_argument('--out', default='models/weights/mobilenet_v2_synth.safetensors')
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    xtr, ytr, classes = load_folder(a.train)
    xva, yva, _ = load_folder(a.val, classes)
    print(f'train {tuple(xtr.shape)}, val {tuple(xva.shape)}, classes {classes}')
    model = torchvision.models.mobilenet_v2(width_mult=0.35, num_classes=len(classes))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = a.epochs * ((len(xtr) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for ep in range(a.epochs):
        t0 = time.time()
        model.train()
        perm = torch.randperm(len(xtr))
        total = 0.0
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            x = xtr[idx]
            # Flips and a little brightness/contrast jitter; corruptions are never seen in training.
            x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(3), x)
            x = x * (1 + 0.2 * (torch.rand(len(x), 1, 1, 1) - 0.5)) + 0.2 * (torch.rand(len(x), 1, 1, 1) - 0.5)
            loss = F.cross_entropy(model(x), ytr[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            acc = (model(xva).argmax(1) == yva).float().mean().item()
        print(f'epoch {ep + 1}: loss {total / len(xtr):.3f}, val top-1 {acc:.3f} ({time.time() - t0:.0f} s)')
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}
    save_safetensors(a.out, sd, metadata={'model': 'mobilenet_v2_synth', 'classes': ','.join(classes),
                                          'val_top1': f'{acc:.4f}', 'script': 'scripts/train_synth_model.py'})
    print(f'wrote {a.out}: {sum(v.numel() for v in sd.values())} values, val top-1 {acc:.3f}')


if __name__ == '__main__':
    main()
