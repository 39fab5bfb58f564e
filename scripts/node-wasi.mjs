// Runs a wasm32-wasip1 command module under Node's WASI: node scripts/node-wasi.mjs FILE.wasm
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';

const file = process.argv[2];
const wasi = new WASI({ version: 'preview1', args: [file, ...process.argv.slice(3)], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
