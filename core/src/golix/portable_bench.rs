//! The Golix hot paths as a portable benchmark (feature `bench`): the same
//! code runs natively and as wasm under wasmtime, Node and a browser, each
//! host giving its own clock, so the runtimes can be compared
//! (`core/examples/bench_portable.rs`, `scripts/bench-wasm.sh`,
//! `scripts/bench-browser.sh`).

use core::hint::black_box;

use ed25519_dalek::{Signer, SigningKey};

use super::suite::cs3::SUITE_ID;
use super::{FirstParty, FreshSecret, Geoc, Ghid, Gobd, Gobs, RequestPayload, SecondParty};
use crate::error::{Error, Result};

/// One measured operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What was measured (`geoc_create_1024`, ...).
    pub name: String,
    /// Nanoseconds per operation.
    pub ns_per_op: f64,
    /// Megabytes per second, for operations over a payload (else 0).
    pub mb_per_s: f64,
}

struct Bench<'a> {
    now_ns: &'a dyn Fn() -> f64,
    budget_ns: f64,
    rows: Vec<Row>,
}

impl Bench<'_> {
    /// Warms up, then runs `f` until the budget is spent (at least 10 times).
    fn measure(
        &mut self,
        name: &str,
        bytes: usize,
        mut f: impl FnMut(u64) -> Result<()>,
    ) -> Result<()> {
        for i in 0..3 {
            f(i)?;
        }
        let start = (self.now_ns)();
        let mut n = 0u64;
        while (self.now_ns)() - start < self.budget_ns || n < 10 {
            f(n + 3)?;
            n += 1;
        }
        let ns = ((self.now_ns)() - start) / n as f64;
        let mb_per_s = if bytes > 0 {
            bytes as f64 / ns * 1e3
        } else {
            0.0
        };
        self.rows.push(Row {
            name: name.into(),
            ns_per_op: ns,
            mb_per_s,
        });
        Ok(())
    }
}

fn fresh(i: u64) -> Result<FreshSecret> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&i.to_le_bytes());
    FreshSecret::from_parts(SUITE_ID, &key, &[1u8; 12])
}

/// Runs every operation for about `budget_ms` each, timing with `now_ns`
/// (any monotonic clock in nanoseconds).
pub fn run(now_ns: &dyn Fn() -> f64, budget_ms: f64) -> Result<Vec<Row>> {
    let mut b = Bench {
        now_ns,
        budget_ns: budget_ms * 1e6,
        rows: Vec::new(),
    };
    let sk = SigningKey::from_bytes(&[3u8; 32]);
    let vk = sk.verifying_key();
    let msg = [9u8; 64];
    let sig = sk.sign(&msg);
    b.measure("raw_ed25519_sign", 0, |_| {
        black_box(sk.sign(black_box(&msg)));
        Ok(())
    })?;
    b.measure("raw_ed25519_verify_strict", 0, |_| {
        vk.verify_strict(black_box(&msg), &sig)
            .map_err(|_| Error::BadSignature)
    })?;

    let alice = FirstParty::from_random(SUITE_ID, &[1u8; 96])?;
    let bob = FirstParty::from_random(SUITE_ID, &[2u8; 96])?;
    let me: SecondParty = alice.second_party().clone();
    for size in [64usize, 1024, 65536, 1 << 20] {
        let pt = vec![0x5au8; size];
        b.measure(&format!("geoc_create_{size}"), size, |i| {
            black_box(alice.make_container(fresh(i)?, black_box(&pt))?);
            Ok(())
        })?;
        let (geoc, secret) = alice.make_container(fresh(0)?, &pt)?;
        let bytes = geoc.to_bytes();
        b.measure(&format!("geoc_verify_{size}"), size, |_| {
            Geoc::parse(black_box(&bytes))?.verify(&me)
        })?;
        b.measure(&format!("geoc_verify_decrypt_{size}"), size, |_| {
            let g = Geoc::parse(black_box(&bytes))?;
            g.verify(&me)?;
            black_box(g.decrypt(&secret)?);
            Ok(())
        })?;
    }
    let (c, secret) = alice.make_container(fresh(1)?, b"x")?;
    let target = c.ghid();
    b.measure("gobs_create", 0, |_| {
        black_box(alice.make_static_binding(black_box(&target)));
        Ok(())
    })?;
    let gobs = alice.make_static_binding(&target).to_bytes();
    b.measure("gobs_verify", 0, |_| {
        Gobs::parse(black_box(&gobs))?.verify(&me)
    })?;
    let f0 = alice.make_first_frame(&target)?;
    b.measure("gobd_next_frame_create", 0, |_| {
        black_box(alice.make_next_frame(black_box(&f0), &target, 7)?);
        Ok(())
    })?;
    let f1 = alice.make_next_frame(&f0, &target, 7)?.to_bytes();
    b.measure("gobd_next_frame_verify", 0, |_| {
        Gobd::parse(black_box(&f1))?.verify(&me)
    })?;
    let payload = RequestPayload::Handshake { target, secret };
    b.measure("garq_create", 0, |i| {
        let mut r = [7u8; 32];
        r[..8].copy_from_slice(&i.to_le_bytes());
        black_box(alice.make_request_with_random(bob.second_party(), payload.clone(), &r)?);
        Ok(())
    })?;
    let garq = alice.make_request_with_random(bob.second_party(), payload.clone(), &[7u8; 32])?;
    let lookup = |g: &Ghid| (*g == alice.ghid()).then(|| alice.second_party().clone());
    b.measure("garq_open", 0, |_| {
        black_box(bob.open_request(black_box(&garq), lookup)?);
        Ok(())
    })?;
    Ok(b.rows)
}

/// The rows as the benchmark scripts read them: `name<TAB>ns<TAB>MB/s` lines.
pub fn render(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| format!("{}\t{:.0}\t{:.1}\n", r.name, r.ns_per_op, r.mb_per_s))
        .collect()
}
