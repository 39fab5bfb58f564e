//! The golden vectors as a WASI command: built for `wasm32-wasip2` and run by
//! `hypergolix selftest` under wasmtime. Prints the report; exits 1 on failure.

fn main() {
    let report =
        hypergolix_core::golix::vectors::check_all(include_str!("../../vectors/golix-cs3.json"));
    print!("{}", report.render());
    if !report.ok() {
        std::process::exit(1);
    }
}
