//! A portable benchmark of the Golix hot paths: the same code runs natively,
//! as a `wasm32-wasip2` component under wasmtime (`hypergolix run-wasm`), as
//! a `wasm32-wasip1` module under Node's WASI, and (through `hypergolix-web`'s
//! `benchPortable`) in a browser, so they can be compared.
//! `scripts/bench-wasm.sh` and `scripts/bench-browser.sh` run them.
//!
//! Output: one line per operation, `name<TAB>ns_per_op<TAB>MB_per_s`.

use std::time::Instant;

use hypergolix_core::golix::portable_bench;

fn main() {
    let start = Instant::now();
    let now_ns = || start.elapsed().as_nanos() as f64;
    match portable_bench::run(&now_ns, 400.0) {
        Ok(rows) => print!("{}", portable_bench::render(&rows)),
        Err(e) => {
            eprintln!("bench_portable: {e}");
            std::process::exit(1);
        }
    }
}
