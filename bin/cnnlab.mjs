#!/usr/bin/env node
// Entry point of `npx cnnlab`: builds the bundles on first use, then hands over to the CLI.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli.mjs');
if (!existsSync(cli)) execFileSync(process.execPath, ['build.mjs'], { cwd: root, stdio: 'inherit' });
const { main } = await import(pathToFileURL(cli).href);
process.exitCode = await main(process.argv.slice(2));
