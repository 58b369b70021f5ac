// Every test worker gets an XDG_RUNTIME_DIR as the CLI does (cli/runtime-dir.ts), so tests that
// start Dawn in-process print no libwayland complaint. tests/cli/args.test.ts removes it again
// for the CLI it spawns, to check that the CLI sets it itself.
import { ensureRuntimeDir } from '../cli/runtime-dir.js';

ensureRuntimeDir();
