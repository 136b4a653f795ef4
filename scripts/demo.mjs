#!/usr/bin/env node
// Runs the local demo from a fresh clone: installs the locked dependencies when node_modules is
// missing or older than package-lock.json, compiles, then runs the compiled demo.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

function run(command, args) {
  const result = spawnSync(command, args, { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const installed = 'node_modules/.package-lock.json';
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync('package-lock.json').mtimeMs) {
  console.log('installing dependencies (npm ci)…');
  run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error']);
}
console.log('compiling (tsc)…');
run('npx', ['tsc', '-p', 'tsconfig.build.json']);
run(process.execPath, ['dist/src/demo/main.js']);
