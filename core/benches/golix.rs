//! Create and verify every object type, next to raw Ed25519 sign/verify.
//!
//! `cargo bench -p hypergolix-core --bench golix`; results in docs/benchmarks.md.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signer, SigningKey};
use hypergolix_core::golix::suite::cs3::SUITE_ID;
use hypergolix_core::golix::{
    FirstParty, FreshSecret, Garq, Gdxx, Geoc, Gidc, Gobd, Gobs, RequestPayload, SecondParty,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn ids() -> (FirstParty, FirstParty) {
    (
        FirstParty::from_random(SUITE_ID, &[1u8; 96]).expect("id"),
        FirstParty::from_random(SUITE_ID, &[2u8; 96]).expect("id"),
    )
}

fn fresh(i: u64) -> FreshSecret {
    FreshSecret::generate(SUITE_ID, &mut ChaCha20Rng::seed_from_u64(i)).expect("secret")
}

fn raw_ed25519(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let vk = key.verifying_key();
    let msg = [9u8; 64];
    let sig = key.sign(&msg);
    let mut g = c.benchmark_group("raw");
    g.bench_function("ed25519_sign_64B", |b| b.iter(|| key.sign(black_box(&msg))));
    g.bench_function("ed25519_verify_strict_64B", |b| {
        b.iter(|| vk.verify_strict(black_box(&msg), &sig))
    });
    g.finish();
}

fn geoc(c: &mut Criterion) {
    let (alice, _) = ids();
    let me = alice.second_party().clone();
    for size in [64usize, 1024, 64 * 1024, 1024 * 1024] {
        let pt = vec![0x5au8; size];
        let mut g = c.benchmark_group("geoc");
        g.throughput(Throughput::Bytes(size as u64));
        if size >= 64 * 1024 {
            g.sample_size(20);
        }
        let mut i = 0u64;
        g.bench_function(BenchmarkId::new("create", size), |b| {
            b.iter_batched(
                || {
                    i += 1;
                    fresh(i)
                },
                |secret| alice.make_container(secret, black_box(&pt)).expect("geoc"),
                criterion::BatchSize::SmallInput,
            )
        });
        let (obj, secret) = alice.make_container(fresh(0), &pt).expect("geoc");
        let bytes = obj.to_bytes();
        g.bench_function(BenchmarkId::new("parse_verify", size), |b| {
            b.iter(|| {
                let o = Geoc::parse(black_box(&bytes)).expect("parse");
                o.verify(&me).expect("verify");
            })
        });
        g.bench_function(BenchmarkId::new("parse_verify_decrypt", size), |b| {
            b.iter(|| {
                let o = Geoc::parse(black_box(&bytes)).expect("parse");
                o.verify(&me).expect("verify");
                o.decrypt(&secret).expect("decrypt")
            })
        });
        g.finish();
    }
}

fn bindings(c: &mut Criterion) {
    let (alice, bob) = ids();
    let me = alice.second_party().clone();
    let (container, secret) = alice.make_container(fresh(1), b"x").expect("geoc");
    let target = container.ghid();
    let mut g = c.benchmark_group("objects");

    g.bench_function("gidc_create", |b| {
        b.iter(|| FirstParty::from_random(SUITE_ID, black_box(&[4u8; 96])).expect("id"))
    });
    let gidc = alice.second_party().gidc().to_bytes();
    g.bench_function("gidc_parse_check_keys", |b| {
        b.iter(|| SecondParty::from_gidc(Gidc::parse(black_box(&gidc)).expect("gidc")))
    });

    g.bench_function("gobs_create", |b| {
        b.iter(|| alice.make_static_binding(black_box(&target)))
    });
    let gobs = alice.make_static_binding(&target).to_bytes();
    g.bench_function("gobs_parse_verify", |b| {
        b.iter(|| {
            Gobs::parse(black_box(&gobs))
                .expect("p")
                .verify(&me)
                .expect("v")
        })
    });

    g.bench_function("gdxx_create", |b| {
        b.iter(|| alice.make_debinding(black_box(&target)))
    });
    let gdxx = alice.make_debinding(&target).to_bytes();
    g.bench_function("gdxx_parse_verify", |b| {
        b.iter(|| {
            Gdxx::parse(black_box(&gdxx))
                .expect("p")
                .verify(&me)
                .expect("v")
        })
    });

    let f0 = alice.make_first_frame(&target).expect("frame");
    g.bench_function("gobd_first_frame_create", |b| {
        b.iter(|| alice.make_first_frame(black_box(&target)).expect("f"))
    });
    let f1 = alice.make_next_frame(&f0, &target, 7).expect("frame");
    g.bench_function("gobd_next_frame_create", |b| {
        b.iter(|| {
            alice
                .make_next_frame(black_box(&f0), &target, 7)
                .expect("f")
        })
    });
    let f0b = f0.to_bytes();
    let f1b = f1.to_bytes();
    g.bench_function("gobd_first_frame_parse_verify", |b| {
        b.iter(|| {
            Gobd::parse(black_box(&f0b))
                .expect("p")
                .verify(&me)
                .expect("v")
        })
    });
    g.bench_function("gobd_next_frame_parse_verify", |b| {
        b.iter(|| {
            Gobd::parse(black_box(&f1b))
                .expect("p")
                .verify(&me)
                .expect("v")
        })
    });

    let payload = RequestPayload::Handshake {
        target,
        secret: secret.clone(),
    };
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    g.bench_function("garq_create", |b| {
        b.iter(|| {
            alice
                .make_request(bob.second_party(), payload.clone(), &mut rng)
                .expect("garq")
        })
    });
    let garq = alice
        .make_request(bob.second_party(), payload, &mut rng)
        .expect("garq")
        .to_bytes();
    let lookup = |g: &hypergolix_core::golix::Ghid| {
        (*g == alice.ghid()).then(|| alice.second_party().clone())
    };
    g.bench_function("garq_parse_open", |b| {
        b.iter(|| {
            bob.open_request(&Garq::parse(black_box(&garq)).expect("p"), lookup)
                .expect("open")
        })
    });
    g.bench_function("ratchet", |b| {
        b.iter(|| {
            secret
                .ratchet(black_box(&target), &f0.dynamic_ghid())
                .expect("r")
        })
    });
    g.finish();
}

criterion_group!(benches, raw_ed25519, geoc, bindings);
criterion_main!(benches);
