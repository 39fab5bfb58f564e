// Browsers, workers and bundlers (Vite, webpack, Rollup): the wasm is
// fetched from next to this module; bundlers copy it as an asset (they
// recognise `new URL('<literal>', import.meta.url)`, so the path stays a
// literal).
export async function wasmSource() {
  // Vite's dev server runs dependencies pre-bundled from
  // node_modules/.vite/deps/, where the relative URL misses; it serves the
  // package's own files at /node_modules/hypergolix/.
  if (import.meta.url.includes('/node_modules/.vite/deps')) {
    return new URL('/node_modules/hypergolix/wasm/hypergolix_web_bg.wasm', import.meta.url);
  }
  return new URL('../wasm/hypergolix_web_bg.wasm', import.meta.url);
}
