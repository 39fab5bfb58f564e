//! The golden vectors as a WASI command (`wasm32-wasip2`): the host's tests
//! run it with `hypergolix run-wasm` / `selftest --module` to exercise WASI
//! command components under wasmtime. Prints the report; exits 1 on failure.

fn main() {
    let report = hypergolix_core::golix::vectors::check_all(include_str!(
        "../../../../vectors/golix-cs3.json"
    ));
    print!("{}", report.render());
    if !report.ok() {
        std::process::exit(1);
    }
}
