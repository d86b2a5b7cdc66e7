#!/usr/bin/env node
// The `bikeshare` command. A built checkout (or the image) runs dist/; a fresh
// checkout without a build runs the TypeScript sources through tsx.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'node:module';

const built = fileURLToPath(new URL('../dist/main.js', import.meta.url));
if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  register('tsx/esm', import.meta.url);
  await import(new URL('../src/main.ts', import.meta.url).href);
}
