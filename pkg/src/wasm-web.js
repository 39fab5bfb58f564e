// Browsers, workers and bundlers (Vite, webpack, Rollup): the wasm is
// fetched from next to this module; bundlers copy it as an asset.
export async function wasmSource() {
  return new URL('../wasm/hypergolix_web_bg.wasm', import.meta.url);
}
