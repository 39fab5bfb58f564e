//! Deterministic simulation: two agents, several devices, one persistence
//! node, a network that delays, reorders, duplicates and disconnects, and
//! devices that crash and restart from their store. Each seed replays
//! exactly. Invariants (checked at the end of every seed, and durability at
//! every restart):
//! - nothing panics;
//! - every holder of an object converges to the same state, and that state
//!   is one that some device's app wrote and had acknowledged;
//! - every acknowledged update of the last writer reaches every holder;
//! - no app state and no password ever reaches the server in the clear;
//! - a restarted device still has every state its app saw before the crash.
//!
//! - the same seed replays bit for bit: every input and every action of
//!   every engine and of the server, in order (`a_seed_replays_bit_for_bit`).
//!
//! `SIM_SEEDS=N` runs N seeds (CI runs the default); `SIM_SEED=S` one seed.

mod sim;

use std::collections::{BTreeMap, BTreeSet};

use hypergolix_core::engine::{ApiId, AppReply, AppRequest, NewObject};
use hypergolix_core::golix::Ghid;
use rand_chacha::rand_core::RngCore;
use sim::{Faults, World};

const PASSWORDS: [&[u8]; 2] = [b"alice password 1", b"bob password 22"];

fn marker(rng: &mut impl RngCore) -> Vec<u8> {
    let mut b = [0u8; 12];
    rng.fill_bytes(&mut b);
    let mut s = b"STATE-".to_vec();
    for x in b {
        s.extend_from_slice(format!("{x:02x}").as_bytes());
    }
    s
}

struct Obj {
    address: Ghid,
    /// Agent index (0 alice, 1 bob).
    owner: usize,
    /// Agents it was shared with (share acknowledged to the app).
    shared_with: BTreeSet<usize>,
    /// Every state an app wrote and had acknowledged.
    acked: BTreeSet<Vec<u8>>,
    deleted: bool,
}

/// What one seed did.
struct Run {
    steps: u64,
    objects: u64,
    server_restarts: u64,
    mid_step_crashes: u64,
    /// The world's trace, if it kept one.
    trace: Option<String>,
}

fn run_seed(seed: u64) -> Run {
    run_world(World::new(seed))
}

fn run_world(mut w: World) -> Run {
    let seed = w.seed;
    let api = ApiId::default_bytes();
    // Alice: two devices; Bob: two devices.
    let (a0, alice_user, alice) = w.new_agent("alice-0", PASSWORDS[0]);
    let (b0, bob_user, bob) = w.new_agent("bob-0", PASSWORDS[1]);
    w.settle(1_000_000);
    let a1 = w.login_device("alice-1", alice_user, PASSWORDS[0]);
    let b1 = w.login_device("bob-1", bob_user, PASSWORDS[1]);
    w.settle(1_000_000);
    let agents = [vec![a0, a1], vec![b0, b1]];
    let ids = [alice, bob];
    for devs in &agents {
        for &d in devs {
            assert!(
                w.devices[d].ready.is_some(),
                "{} logged in",
                w.devices[d].name
            );
            w.call(d, AppRequest::RegisterApi(api))
                .expect("register api");
        }
    }

    let mut objs: Vec<Obj> = Vec::new();
    w.faults = Faults {
        disconnect: 0.01,
        duplicate: 0.05,
        crash: 0.004,
        server_crash: 0.001,
        crash_mid_step: 0.002,
        max_delay: 20,
    };
    // Requests whose replies we wait for: req → (device, what).
    enum Wait {
        New(usize, Vec<u8>),
        Update(usize, Vec<u8>),
        Share(usize, usize),
        Delete(usize),
    }
    let mut waiting: BTreeMap<u64, (usize, Wait)> = BTreeMap::new();
    let ops = 60;
    for _ in 0..ops {
        // A few network steps between operations.
        let n = w.rng.next_u64() % 30;
        for _ in 0..n {
            w.step();
        }
        let agent = (w.rng.next_u64() % 2) as usize;
        let d = agents[agent][(w.rng.next_u64() % 2) as usize];
        if w.devices[d].crashed || w.devices[d].engine.is_none() {
            continue;
        }
        let mine: Vec<usize> = objs
            .iter()
            .enumerate()
            .filter(|(_, o)| o.owner == agent && !o.deleted)
            .map(|(i, _)| i)
            .filter(|i| w.engine(d).peek(&objs[*i].address).is_some())
            .collect();
        let roll = w.rng.next_u64() % 100;
        if mine.is_empty() || roll < 12 {
            let state = marker(&mut w.rng);
            let r = w.request(
                d,
                AppRequest::New(NewObject {
                    api_id: api,
                    private: false,
                    dynamic: true,
                    legroom: 0,
                    is_link: false,
                    state: state.clone(),
                }),
            );
            waiting.insert(r, (d, Wait::New(agent, state)));
        } else {
            let i = mine[(w.rng.next_u64() % mine.len() as u64) as usize];
            if roll < 22 {
                let r = w.request(
                    d,
                    AppRequest::Share {
                        address: objs[i].address,
                        recipient: ids[1 - agent],
                    },
                );
                waiting.insert(r, (d, Wait::Share(i, 1 - agent)));
            } else if roll < 25 {
                let r = w.request(d, AppRequest::Delete(objs[i].address));
                waiting.insert(r, (d, Wait::Delete(i)));
            } else {
                let state = marker(&mut w.rng);
                let r = w.request(
                    d,
                    AppRequest::Update {
                        address: objs[i].address,
                        state: state.clone(),
                    },
                );
                waiting.insert(r, (d, Wait::Update(i, state)));
            }
        }
        // Collect replies that arrived.
        let done: Vec<u64> = waiting
            .iter()
            .filter(|(r, (d, _))| w.devices[*d].replies.contains_key(r))
            .map(|(r, _)| *r)
            .collect();
        for r in done {
            let (d, what) = waiting.remove(&r).expect("waiting");
            let reply = w.devices[d].replies.get(&r).cloned().expect("reply");
            match (what, reply) {
                (Wait::New(agent, state), Ok(AppReply::Ghid(g))) => objs.push(Obj {
                    address: g,
                    owner: agent,
                    shared_with: BTreeSet::new(),
                    acked: [state].into_iter().collect(),
                    deleted: false,
                }),
                (Wait::Update(i, state), Ok(AppReply::Done)) => {
                    objs[i].acked.insert(state);
                }
                (Wait::Share(i, to), Ok(AppReply::Done)) => {
                    objs[i].shared_with.insert(to);
                }
                (Wait::Delete(i), Ok(AppReply::Done)) => objs[i].deleted = true,
                _ => {}
            }
        }
    }
    // Heal the network and let everything settle.
    w.faults = Faults::NONE;
    w.settle(5_000_000);
    // A second settle after every device is back catches late catch-ups.
    for d in 0..w.devices.len() {
        w.disconnect(d);
    }
    w.settle(5_000_000);

    // Deletions made on any device win.
    for o in objs.iter_mut() {
        let owner_devs = &agents[o.owner];
        if owner_devs
            .iter()
            .any(|&d| w.engine(d).peek(&o.address).is_none())
        {
            o.deleted = true;
        }
    }
    for o in &objs {
        let mut holders: Vec<usize> = agents[o.owner].clone();
        for &agent in &o.shared_with {
            holders.extend(&agents[agent]);
        }
        let states: Vec<Option<Vec<u8>>> = holders
            .iter()
            .map(|&d| w.engine(d).peek(&o.address).map(|x| x.state))
            .collect();
        if o.deleted {
            assert!(
                states.iter().all(Option::is_none),
                "seed {seed}: a deleted object is still held: {:?}",
                holders
                    .iter()
                    .zip(&states)
                    .map(|(d, s)| (w.devices[*d].name.clone(), s.is_some()))
                    .collect::<Vec<_>>()
            );
            continue;
        }
        let first = states[0]
            .clone()
            .unwrap_or_else(|| panic!("seed {seed}: the owner's device lost object {}", o.address));
        for (d, s) in holders.iter().zip(&states) {
            assert_eq!(
                s.as_ref(),
                Some(&first),
                "seed {seed}: {} does not converge on {}: {} / holders: {:?}",
                w.devices[*d].name,
                o.address,
                w.engine(*d).describe(&o.address),
                holders
                    .iter()
                    .map(|h| (
                        w.devices[*h].name.clone(),
                        w.engine(*h).describe(&o.address)
                    ))
                    .collect::<Vec<_>>()
            );
        }
        assert!(
            o.acked.contains(&first),
            "seed {seed}: converged state was never acknowledged to any app"
        );
    }
    // Every device is synced: nothing acknowledged is left unpublished.
    for d in 0..w.devices.len() {
        assert!(
            w.engine(d).is_synced(),
            "seed {seed}: {} still has unpublished work: {:#?}",
            w.devices[d].name,
            w.engine(d).pending_work()
        );
    }
    // No plaintext at the server.
    let secrets: Vec<Vec<u8>> = objs
        .iter()
        .flat_map(|o| o.acked.iter().cloned())
        .chain(PASSWORDS.iter().map(|p| p.to_vec()))
        .collect();
    for m in &w.server_saw {
        for s in &secrets {
            assert!(
                !m.windows(s.len()).any(|x| x == s.as_slice()),
                "seed {seed}: plaintext reached the server"
            );
        }
    }
    Run {
        steps: w.steps,
        objects: objs.len() as u64,
        server_restarts: w.server_restarts,
        mid_step_crashes: w.mid_step_crashes,
        trace: w.trace.take(),
    }
}

#[test]
fn simulation_seeds() {
    if let Ok(s) = std::env::var("SIM_SEED") {
        let seed: u64 = s.parse().expect("SIM_SEED is a number");
        let _ = run_seed(seed);
        return;
    }
    let n: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let (mut steps, mut objects, mut restarts, mut mid) = (0, 0, 0, 0);
    for seed in 0..n {
        let r = run_seed(seed);
        steps += r.steps;
        objects += r.objects;
        restarts += r.server_restarts;
        mid += r.mid_step_crashes;
    }
    println!(
        "{n} seeds, {steps} message deliveries, {objects} objects, {restarts} server restarts, {mid} devices killed mid-step"
    );
}

/// Runs `seed` keeping a trace of every input and action.
fn traced(seed: u64) -> Run {
    let mut w = World::new(seed);
    w.trace = Some(String::new());
    run_world(w)
}

#[test]
fn a_seed_replays_bit_for_bit() {
    // Seeds with reconnects (where the engine runs its parked jobs again;
    // seed 5 did not replay while they were kept in a HashMap), a restart
    // of the server and a device killed in the middle of a step.
    let (mut restarts, mut kills) = (0, 0);
    for seed in [5, 7] {
        let first = traced(seed);
        restarts += first.server_restarts;
        kills += first.mid_step_crashes;
        let (a, b) = (
            first.trace.expect("a trace"),
            traced(seed).trace.expect("a trace"),
        );
        assert!(a.lines().count() > 1000, "seed {seed}: a real run");
        if a != b {
            let (i, (x, y)) = a
                .lines()
                .zip(b.lines())
                .enumerate()
                .find(|(_, (x, y))| x != y)
                .unwrap_or((a.lines().count().min(b.lines().count()), ("(end)", "(end)")));
            panic!(
                "seed {seed} did not replay: line {i} differs\nfirst: {}\nagain: {}",
                x.chars().take(400).collect::<String>(),
                y.chars().take(400).collect::<String>()
            );
        }
    }
    assert!(
        restarts > 0 && kills > 0,
        "the seeds restart the server and kill a device mid-step"
    );
}
