//! Update latency through the Rust link: A's app updates a shared object,
//! B's app callback fires (the seed scenario, as `hypergolix-ipc-bench`
//! measures it with raw IPC, but with `HypergolixLink`/`AppObj` on both
//! sides), then objects created one at a time. Run by
//! `scripts/bench-service.sh`:
//!
//! ```sh
//! cargo run --release -p hypergolix-link --example link_latency -- A_ADDR B_ADDR [UPDATES]
//! ```

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hypergolix_link::{ApiId, HypergolixLink, NewObj};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(a_addr), Some(b_addr)) = (args.get(1), args.get(2)) else {
        return Err("usage: link_latency A_ADDR B_ADDR [UPDATES]".into());
    };
    let n: u32 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let a = HypergolixLink::connect_threadsafe(a_addr)?;
    let b = HypergolixLink::connect_threadsafe(b_addr)?;
    a.new_token_threadsafe()?;
    b.new_token_threadsafe()?;
    let api = ApiId::from_app_bytes([0x1a; 64]);
    let (shared_tx, shared_rx) = mpsc::channel();
    let shared_tx = Mutex::new(shared_tx);
    b.register_api_threadsafe(api, move |s| {
        if let Ok(tx) = shared_tx.lock() {
            let _ = tx.send(s.address);
        }
    })?;
    let obj = a.new_obj_threadsafe(
        vec![0; 64],
        NewObj {
            api_id: api,
            ..NewObj::default()
        },
    )?;
    obj.share_threadsafe(b.whoami())?;
    let address = shared_rx.recv_timeout(Duration::from_secs(30))?;
    let on_b = b.get_threadsafe(address)?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let tx = Mutex::new(tx);
    on_b.append_callback(move |o| {
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(o.state());
        }
    });
    let mut lat = Vec::with_capacity(n as usize);
    let t_all = Instant::now();
    for i in 1..=n {
        let mut state = vec![0u8; 64];
        state[..4].copy_from_slice(&i.to_be_bytes());
        let t0 = Instant::now();
        obj.set_state_threadsafe(state.clone())?;
        loop {
            if rx.recv_timeout(Duration::from_secs(30))? == state {
                break;
            }
        }
        lat.push(t0.elapsed());
    }
    let total = t_all.elapsed();
    lat.sort();
    let pick = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
    println!(
        "rust link update -> callback: p50 {:.3} ms, p99 {:.3} ms over {n} updates; {:.0} updates/s closed loop",
        pick(0.5),
        pick(0.99),
        f64::from(n) / total.as_secs_f64()
    );

    // Creation, one object at a time, each call returning the new object
    // (as `hypergolix-ipc-bench`'s "creates/s", through the link).
    let creates = n.min(500);
    let t = Instant::now();
    for i in 0..creates {
        a.new_obj_threadsafe(i.to_be_bytes().to_vec(), NewObj::default())?;
    }
    println!(
        "rust link creates: {:.0}/s closed loop over {creates} objects",
        f64::from(creates) / t.elapsed().as_secs_f64()
    );
    Ok(())
}
