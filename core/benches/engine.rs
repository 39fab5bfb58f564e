//! The engine in-process: engines + core's persistence node over the
//! simulation's perfect network, no sockets. Each iteration is one app
//! operation carried all the way through (every engine and the node run
//! until nothing is in flight).
//!
//! cargo bench -p hypergolix-core --bench engine

use criterion::{criterion_group, criterion_main, Criterion};
use hypergolix_core::engine::{ApiId, AppPush, AppReply, AppRequest, NewObject};
use hypergolix_core::golix::Ghid;

#[path = "../tests/sim/mod.rs"]
mod sim;
use sim::World;

fn new_dynamic(state: &[u8]) -> AppRequest {
    AppRequest::New(NewObject {
        api_id: ApiId::default_bytes(),
        private: false,
        dynamic: true,
        legroom: 0,
        is_link: false,
        state: state.to_vec(),
    })
}

fn ghid(r: Result<AppReply, hypergolix_core::Error>) -> Ghid {
    match r {
        Ok(AppReply::Ghid(g)) => g,
        other => panic!("{other:?}"),
    }
}

/// Alice and Bob, Bob registered for the api, one object shared with him.
fn world() -> (World, usize, usize, Ghid, Ghid) {
    let mut w = World::new(42);
    w.page_entries = hypergolix_core::engine::EngineConfig::new([0; 32]).page_entries;
    let (a, _, _) = w.new_agent("alice", b"a");
    let (b, _, bob) = w.new_agent("bob", b"b");
    w.settle(1_000_000);
    w.call(b, AppRequest::RegisterApi(ApiId::default_bytes()))
        .expect("register");
    let g = ghid(w.call(a, new_dynamic(b"0")));
    w.call(
        a,
        AppRequest::Share {
            address: g,
            recipient: bob,
        },
    )
    .expect("share");
    // B's app tracks the object, so it is pushed every update.
    w.call(b, AppRequest::Get(g)).expect("get");
    (w, a, b, g, bob)
}

fn bench(c: &mut Criterion) {
    let (mut w, a, b, g, bob) = world();
    let mut grp = c.benchmark_group("engine");
    // Update → delivered: A's app updates, B's app is pushed the new state.
    let mut i = 0u64;
    grp.bench_function("update_to_delivered_64B", |x| {
        x.iter(|| {
            i += 1;
            let mut state = i.to_be_bytes().to_vec();
            state.resize(64, 0);
            let before = w.devices[b].pushes.len();
            w.call(
                a,
                AppRequest::Update {
                    address: g,
                    state: state.clone(),
                },
            )
            .expect("update");
            let got = w.devices[b].pushes[before..]
                .iter()
                .any(|(_, p)| matches!(p, AppPush::Update(o) if o.state == state));
            assert!(
                got,
                "B's app got update {i}: {} / {} / {:?}",
                w.engine(b).describe(&g),
                w.engine(a).describe(&g),
                w.engine(b).pending_work()
            );
        })
    });
    grp.bench_function("create_dynamic_64B", |x| {
        x.iter(|| ghid(w.call(a, new_dynamic(&[7; 64]))))
    });
    grp.bench_function("share_to_recipient_app", |x| {
        x.iter(|| {
            let o = ghid(w.call(a, new_dynamic(b"s")));
            let before = w.devices[b].pushes.len();
            w.call(
                a,
                AppRequest::Share {
                    address: o,
                    recipient: bob,
                },
            )
            .expect("share");
            assert!(
                w.devices[b].pushes[before..]
                    .iter()
                    .any(|(_, p)| matches!(p, AppPush::Share { address, .. } if *address == o)),
                "{:?} / {:?} / {}",
                w.engine(a).pending_work(),
                w.engine(b).pending_work(),
                w.engine(b).describe(&o)
            );
        })
    });
    grp.finish();
    // Account creation with the real Argon2id parameters (19 MiB, 2 passes):
    // key generation, the KDF, and the first objects signed.
    let mut acct = c.benchmark_group("account");
    acct.sample_size(10);
    let mut seed = 0u8;
    acct.bench_function("create_account_default_kdf", |x| {
        x.iter(|| {
            seed = seed.wrapping_add(1);
            let mut e = hypergolix_core::engine::Engine::new(
                hypergolix_core::engine::EngineConfig::new([1; 32]),
                [seed; 32],
            );
            e.create_account(b"correct horse battery staple")
                .expect("account")
        })
    });
    acct.finish();
    let s = w.engine(a).stats();
    println!(
        "alice: {} objects published, {} signatures made in total",
        s.published, s.signed
    );
}

criterion_group!(benches, bench, revocation);
criterion_main!(benches);

/// Unshare with 1, 10 and 100 remaining recipients: the time from the
/// owner's `%O` to the last remaining recipient's app holding the state of
/// the next update (the rotation frame, a handshake per recipient, their
/// answers, then the update), against the same update with no unshare (the
/// baseline, in the same run). Between timed iterations (untimed) the
/// unshared agent is shared with again, which rotates once more.
fn revocation(c: &mut Criterion) {
    use criterion::BenchmarkId;
    use std::time::{Duration, Instant};
    let mut grp = c.benchmark_group("revocation");
    grp.sample_size(10);
    for n in [1usize, 10, 100] {
        let mut w = World::new(7);
        w.page_entries = hypergolix_core::engine::EngineConfig::new([0; 32]).page_entries;
        let (a, _, _) = w.new_agent("owner", b"a");
        let mut recipients = Vec::new();
        for k in 0..=n {
            let (d, _, id) = w.new_agent(&format!("recipient-{k}"), b"r");
            recipients.push((d, id));
        }
        w.settle(100_000_000);
        let g = ghid(w.call(a, new_dynamic(b"0")));
        for &(d, id) in &recipients {
            w.call(d, AppRequest::RegisterApi(ApiId::default_bytes()))
                .expect("register");
            w.call(
                a,
                AppRequest::Share {
                    address: g,
                    recipient: id,
                },
            )
            .expect("share");
            w.call(d, AppRequest::Get(g)).expect("get");
        }
        let (gone_dev, gone) = recipients[0];
        let remaining: Vec<usize> = recipients[1..].iter().map(|(d, _)| *d).collect();
        let mut i = 0u64;
        let mut update = |w: &mut World| {
            i += 1;
            let state = i.to_be_bytes().to_vec();
            w.call(
                a,
                AppRequest::Update {
                    address: g,
                    state: state.clone(),
                },
            )
            .expect("update");
            state
        };
        grp.bench_function(BenchmarkId::new("update_to_last_recipient", n), |x| {
            x.iter(|| {
                let state = update(&mut w);
                for &d in &remaining {
                    assert_eq!(w.engine(d).peek(&g).expect("held").state, state);
                }
            })
        });
        grp.bench_function(
            BenchmarkId::new("unshare_then_update_to_last_recipient", n),
            |x| {
                x.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        w.call(
                            a,
                            AppRequest::Share {
                                address: g,
                                recipient: gone,
                            },
                        )
                        .expect("share again");
                        let t0 = Instant::now();
                        w.call(
                            a,
                            AppRequest::Unshare {
                                address: g,
                                recipient: gone,
                            },
                        )
                        .expect("unshare");
                        let state = update(&mut w);
                        total += t0.elapsed();
                        for &d in &remaining {
                            assert_eq!(w.engine(d).peek(&g).expect("held").state, state);
                        }
                        assert_ne!(w.engine(gone_dev).peek(&g).expect("held").state, state);
                    }
                    total
                })
            },
        );
    }
    grp.finish();
}
