//! A portable benchmark of the Golix hot paths: the same code runs natively,
//! as a `wasm32-wasip2` component under wasmtime (`hypergolix run-wasm`) and as
//! a `wasm32-wasip1` module under Node's WASI, so the three can be compared.
//! `scripts/bench-wasm.sh` runs all three and prints the ratios.
//!
//! Output: one line per operation, `name<TAB>ns_per_op<TAB>MB_per_s`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use hypergolix_core::golix::suite::cs3::SUITE_ID;
use hypergolix_core::golix::{
    FirstParty, FreshSecret, Geoc, Gobd, Gobs, RequestPayload, SecondParty,
};

const BUDGET: Duration = Duration::from_millis(400);

fn measure(name: &str, bytes: usize, mut f: impl FnMut(u64)) {
    // Warm up, then run until the budget is spent.
    for i in 0..3 {
        f(i);
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < BUDGET || n < 10 {
        f(n + 3);
        n += 1;
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    let mbs = if bytes > 0 {
        bytes as f64 / ns * 1e3
    } else {
        0.0
    };
    println!("{name}\t{ns:.0}\t{mbs:.1}");
}

fn fresh(i: u64) -> FreshSecret {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&i.to_le_bytes());
    FreshSecret::from_parts(SUITE_ID, &key, &[1u8; 12]).expect("secret")
}

fn main() {
    let sk = SigningKey::from_bytes(&[3u8; 32]);
    let vk = sk.verifying_key();
    let msg = [9u8; 64];
    let sig = sk.sign(&msg);
    measure("raw_ed25519_sign", 0, |_| {
        black_box(sk.sign(black_box(&msg)));
    });
    measure("raw_ed25519_verify_strict", 0, |_| {
        black_box(vk.verify_strict(black_box(&msg), &sig)).expect("verify");
    });

    let alice = FirstParty::from_random(SUITE_ID, &[1u8; 96]).expect("id");
    let bob = FirstParty::from_random(SUITE_ID, &[2u8; 96]).expect("id");
    let me: SecondParty = alice.second_party().clone();
    for size in [64usize, 1024, 65536, 1 << 20] {
        let pt = vec![0x5au8; size];
        measure(&format!("geoc_create_{size}"), size, |i| {
            black_box(
                alice
                    .make_container(fresh(i), black_box(&pt))
                    .expect("geoc"),
            );
        });
        let (geoc, secret) = alice.make_container(fresh(0), &pt).expect("geoc");
        let bytes = geoc.to_bytes();
        measure(&format!("geoc_verify_{size}"), size, |_| {
            Geoc::parse(black_box(&bytes))
                .expect("parse")
                .verify(&me)
                .expect("verify");
        });
        measure(&format!("geoc_verify_decrypt_{size}"), size, |_| {
            let g = Geoc::parse(black_box(&bytes)).expect("parse");
            g.verify(&me).expect("verify");
            black_box(g.decrypt(&secret).expect("decrypt"));
        });
    }
    let (c, secret) = alice.make_container(fresh(1), b"x").expect("geoc");
    let target = c.ghid();
    measure("gobs_create", 0, |_| {
        black_box(alice.make_static_binding(black_box(&target)));
    });
    let gobs = alice.make_static_binding(&target).to_bytes();
    measure("gobs_verify", 0, |_| {
        Gobs::parse(black_box(&gobs))
            .expect("parse")
            .verify(&me)
            .expect("verify");
    });
    let f0 = alice.make_first_frame(&target).expect("frame");
    measure("gobd_next_frame_create", 0, |_| {
        black_box(
            alice
                .make_next_frame(black_box(&f0), &target, 7)
                .expect("frame"),
        );
    });
    let f1 = alice
        .make_next_frame(&f0, &target, 7)
        .expect("frame")
        .to_bytes();
    measure("gobd_next_frame_verify", 0, |_| {
        Gobd::parse(black_box(&f1))
            .expect("parse")
            .verify(&me)
            .expect("verify");
    });
    let payload = RequestPayload::Handshake { target, secret };
    measure("garq_create", 0, |i| {
        let mut r = [7u8; 32];
        r[..8].copy_from_slice(&i.to_le_bytes());
        black_box(
            alice
                .make_request_with_random(bob.second_party(), payload.clone(), &r)
                .expect("garq"),
        );
    });
    let garq = alice
        .make_request_with_random(bob.second_party(), payload.clone(), &[7u8; 32])
        .expect("garq");
    let lookup = |g: &hypergolix_core::golix::Ghid| {
        (*g == alice.ghid()).then(|| alice.second_party().clone())
    };
    measure("garq_open", 0, |_| {
        black_box(bob.open_request(black_box(&garq), lookup).expect("open"));
    });
}
