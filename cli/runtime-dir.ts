// XDG_RUNTIME_DIR for Dawn and Chromium. Creating Dawn's Vulkan instance (in-process, on the
// first createDevice in Node) probes for a Wayland display, and libwayland-client prints
// "error: XDG_RUNTIME_DIR is invalid or not set in the environment." to stderr, twice, whenever
// the variable is unset (containers, CI, ssh sessions without a login manager); Chromium's GPU
// process runs the same Vulkan loader. A private directory, mode 0700 as the XDG spec asks,
// satisfies the probe; no display is found there, which is what a headless run wants. It is
// removed when the process exits.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

let made: string | undefined;

function isUsable(dir: string | undefined): dir is string {
  if (!dir || !path.isAbsolute(dir)) return false;
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** The user's XDG_RUNTIME_DIR when it names a directory, else a private one made for this process. */
export function runtimeDir(): string {
  if (isUsable(process.env.XDG_RUNTIME_DIR)) return process.env.XDG_RUNTIME_DIR;
  if (!made) {
    const dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-xdg-')); // mkdtemp makes it 0700
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    made = dir;
  }
  return made;
}

/** Set XDG_RUNTIME_DIR for this process (Dawn reads it in-process) and every child it starts. */
export function ensureRuntimeDir(): void {
  process.env.XDG_RUNTIME_DIR = runtimeDir();
}
