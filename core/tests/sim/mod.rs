//! Deterministic simulation of Hypergolix in one process: engines on
//! several devices, one persistence node running core's rules over the
//! memory backend, and a network that delays, reorders (across connections),
//! duplicates pushes and breaks connections; devices crash and restart from
//! their local store. Everything is driven by one seed.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use hypergolix_core::engine::{
    Action, AppPush, AppReply, AppRequest, Engine, EngineConfig, Input, KdfParams, SessionId, Step,
};
use hypergolix_core::golix::{Ghid, GolixObject};
use hypergolix_core::persist::{ConnId, MemoryStore, Node};
use hypergolix_core::wire::remote::{Message, Request};
use hypergolix_core::Error;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The app session every device's test app uses.
pub const APP: SessionId = 1;

/// One device: an engine (absent while crashed), its durable local store,
/// and what its app saw.
pub struct Device {
    pub name: String,
    pub cfg: EngineConfig,
    pub engine: Option<Engine>,
    pub store: BTreeMap<Vec<u8>, Vec<u8>>,
    pub conn: Option<ConnId>,
    pub pushes: Vec<(SessionId, AppPush)>,
    pub replies: BTreeMap<u64, Result<AppReply, Error>>,
    pub ready: Option<(Ghid, Ghid)>,
    pub login_failed: Option<Error>,
    /// Answers to the host's own account requests, in order.
    pub host_replies: Vec<Result<AppReply, Error>>,
    pub crashed: bool,
    pub offline: bool,
    /// What the engine held when it was killed.
    pub at_crash: BTreeMap<Ghid, Vec<u8>>,
    /// Object states as of the last fully carried-out step.
    pub durable_states: BTreeMap<Ghid, Vec<u8>>,
}

/// What the network may do.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Per delivery: probability that some device's connection breaks.
    pub disconnect: f64,
    /// Per delivered push: probability that it is delivered twice.
    pub duplicate: f64,
    /// Per delivery: probability that some device crashes (kill -9).
    pub crash: f64,
    /// Per delivery: probability that the server node crashes and restarts
    /// from its store (every connection drops).
    pub server_crash: f64,
    /// Per engine step: probability that the device is killed while
    /// carrying out the step's actions, after those that may precede its
    /// store write and before the write itself.
    pub crash_mid_step: f64,
    /// Most ticks a message waits.
    pub max_delay: u64,
}

impl Faults {
    /// A perfect network.
    pub const NONE: Faults = Faults {
        disconnect: 0.0,
        duplicate: 0.0,
        crash: 0.0,
        server_crash: 0.0,
        crash_mid_step: 0.0,
        max_delay: 1,
    };
}

enum Envelope {
    ToServer {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    ToDevice {
        dev: usize,
        conn: ConnId,
        bytes: Vec<u8>,
    },
}

/// The world.
pub struct World {
    pub rng: ChaCha20Rng,
    pub node: Node<MemoryStore>,
    pub devices: Vec<Device>,
    pub now: u64,
    queue: BTreeMap<(u64, u64), Envelope>,
    seq: u64,
    next_conn: ConnId,
    live: BTreeSet<ConnId>,
    /// Last delivery time per (connection, direction): keeps each link FIFO.
    link_time: BTreeMap<(ConnId, bool), u64>,
    pub faults: Faults,
    next_req: u64,
    /// Every message body any device sent to the server.
    pub server_saw: Vec<Vec<u8>>,
    pub steps: u64,
    pub seed: u64,
    pub server_restarts: u64,
    /// Devices killed in the middle of a step.
    pub mid_step_crashes: u64,
    /// Account-state page size of devices added from now on (tiny by
    /// default, so that every run pages its account state).
    pub page_entries: usize,
    /// When set, every input to an engine and to the server and every
    /// action and reply they return, in order, as text (what
    /// `a_seed_replays_bit_for_bit` compares).
    pub trace: Option<String>,
    /// Every frame the server accepted, in order: (step, sending device,
    /// frame bytes).
    pub accepted_frames: Vec<(u64, usize, Vec<u8>)>,
    /// Every container the server accepted, by GHID.
    pub accepted_containers: BTreeMap<Ghid, Vec<u8>>,
    /// When each frame was first sent to the server (step), by frame GHID
    /// (an engine builds a frame when it sends it).
    pub frame_first_sent: BTreeMap<Ghid, u64>,
    /// Sample masters after every step (the simulation's revocation check;
    /// off by default: benchmarks must not pay for it).
    pub sample_masters: bool,
    /// Every master each device's engine ever held, by device and object
    /// (`SH` bytes), sampled after each of its steps.
    pub masters_seen: BTreeMap<usize, BTreeMap<Ghid, BTreeSet<Vec<u8>>>>,
    /// When each app request was answered (step), by device and request.
    pub replied_at: BTreeMap<(usize, u64), u64>,
}

impl World {
    /// A world with no devices.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha20Rng::seed_from_u64(seed),
            node: Node::new(MemoryStore::new()),
            devices: Vec::new(),
            now: 0,
            queue: BTreeMap::new(),
            seq: 0,
            next_conn: 1,
            live: BTreeSet::new(),
            link_time: BTreeMap::new(),
            faults: Faults::NONE,
            next_req: 1,
            server_saw: Vec::new(),
            steps: 0,
            seed,
            server_restarts: 0,
            mid_step_crashes: 0,
            page_entries: 3,
            trace: None,
            accepted_frames: Vec::new(),
            accepted_containers: BTreeMap::new(),
            frame_first_sent: BTreeMap::new(),
            sample_masters: false,
            masters_seen: BTreeMap::new(),
            replied_at: BTreeMap::new(),
        }
    }

    /// Records every master device `d`'s engine holds now.
    fn sample_masters(&mut self, d: usize) {
        if !self.sample_masters {
            return;
        }
        let Some(e) = self.devices[d].engine.as_ref() else {
            return;
        };
        let seen = self.masters_seen.entry(d).or_default();
        for (g, ms) in e.masters_for_tests() {
            let set = seen.entry(g).or_default();
            for m in ms {
                set.insert(m.to_bytes().to_vec());
            }
        }
    }

    /// Appends one line to the trace, if one is kept.
    fn note(&mut self, line: impl FnOnce(&mut String)) {
        if let Some(t) = self.trace.as_mut() {
            line(t);
            t.push('\n');
        }
    }

    fn seed32(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        s
    }

    /// Adds a device with no account; returns its index.
    pub fn add_device(&mut self, name: &str) -> usize {
        let mut key = [0u8; 32];
        self.rng.fill_bytes(&mut key);
        let mut cfg = EngineConfig::new(key);
        cfg.kdf = KdfParams::INSECURE_TEST;
        cfg.page_entries = self.page_entries;
        let seed = self.seed32();
        self.devices.push(Device {
            name: name.into(),
            cfg: cfg.clone(),
            engine: Some(Engine::new(cfg, seed)),
            store: BTreeMap::new(),
            conn: None,
            pushes: Vec::new(),
            replies: BTreeMap::new(),
            ready: None,
            login_failed: None,
            host_replies: Vec::new(),
            crashed: false,
            offline: false,
            at_crash: BTreeMap::new(),
            durable_states: BTreeMap::new(),
        });
        let d = self.devices.len() - 1;
        self.input(d, Input::AppConnected(APP));
        d
    }

    /// A device that creates a new account; returns (device, user id, identity).
    pub fn new_agent(&mut self, name: &str, password: &[u8]) -> (usize, Ghid, Ghid) {
        let d = self.add_device(name);
        let actions = self.devices[d]
            .engine
            .as_mut()
            .expect("engine")
            .create_account(password)
            .expect("create account");
        self.apply(d, actions);
        self.note_durable(d);
        self.connect(d);
        let (u, i) = self.devices[d].ready.expect("ready");
        (d, u, i)
    }

    /// A second device of an existing account, logged in by password.
    pub fn login_device(&mut self, name: &str, user_id: Ghid, password: &[u8]) -> usize {
        self.opened_device(name, |e| e.login(user_id, password))
    }

    /// A device with nothing that recovers an account with its words
    /// under a new password.
    pub fn recover_device(
        &mut self,
        name: &str,
        user_id: Ghid,
        phrase: &str,
        new_password: &[u8],
    ) -> usize {
        self.opened_device(name, |e| e.recover(user_id, phrase, new_password))
    }

    /// A new device, connected, whose engine `open` starts on an account
    /// it does not hold yet (a login, a recovery).
    fn opened_device(
        &mut self,
        name: &str,
        open: impl FnOnce(&mut Engine) -> Result<Step, Error>,
    ) -> usize {
        let d = self.add_device(name);
        self.connect(d);
        let actions = open(self.devices[d].engine.as_mut().expect("engine")).expect("open");
        self.apply(d, actions);
        self.note_durable(d);
        d
    }

    pub fn connect(&mut self, d: usize) {
        if self.devices[d].conn.is_some() || self.devices[d].crashed {
            return;
        }
        let c = self.next_conn;
        self.next_conn += 1;
        self.live.insert(c);
        // Every other connection asks for frames' containers with the
        // frames (`!C`), as our engines do over websockets; the rest get
        // `!!` only, as 0.1.0 clients do. (No draw from the seed's stream.)
        // `SIM_NO_CONTAINERS=1` runs every connection as 0.1.0's.
        if c % 2 == 0 && std::env::var("SIM_NO_CONTAINERS").is_err() {
            self.node.push_containers(c);
        }
        self.devices[d].conn = Some(c);
        self.input(d, Input::ServerUp);
    }

    pub fn disconnect(&mut self, d: usize) {
        if let Some(c) = self.devices[d].conn.take() {
            self.live.remove(&c);
            self.node.disconnect(c);
            if self.devices[d].engine.is_some() {
                self.input(d, Input::ServerDown);
            }
        }
    }

    /// kill -9: the engine and its connection vanish; the store stays.
    pub fn crash(&mut self, d: usize) {
        self.disconnect(d);
        if let Some(e) = self.devices[d].engine.as_ref() {
            self.devices[d].at_crash = states(e);
        }
        self.devices[d].engine = None;
        self.devices[d].crashed = true;
    }

    /// Restarts a crashed device from its store and checks that everything
    /// its app saw is still there.
    pub fn restart(&mut self, d: usize) {
        let seed = self.seed32();
        let dev = &mut self.devices[d];
        let records: Vec<(Vec<u8>, Vec<u8>)> = dev
            .store
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (engine, actions) =
            Engine::restore(dev.cfg.clone(), seed, records).expect("restore from the local store");
        // Everything the engine held when killed (every acknowledged update
        // and every state shown to an app among it) is there again.
        for (address, state) in &dev.at_crash {
            let now = engine.peek(address).map(|o| o.state);
            assert_eq!(
                now.as_ref(),
                Some(state),
                "seed {}: {}: {address} is not what it was before the crash ({})",
                self.seed,
                dev.name,
                engine.describe(address)
            );
        }
        assert_eq!(
            engine
                .addresses()
                .iter()
                .filter(|g| engine.peek(g).is_some())
                .count(),
            dev.at_crash.len(),
            "seed {}: {}: objects appeared or vanished across the crash",
            self.seed,
            dev.name
        );
        dev.engine = Some(engine);
        dev.crashed = false;
        self.apply(d, actions);
        self.note_durable(d);
        self.input(d, Input::AppConnected(APP));
        self.connect(d);
    }

    /// Feeds an input to a device's engine and carries out the actions.
    pub fn input(&mut self, d: usize, input: Input) {
        if self.devices[d].engine.is_none() {
            return;
        }
        self.note(|t| {
            let _ = write!(t, "{d} < {input:?}");
        });
        let Some(e) = self.devices[d].engine.as_mut() else {
            return;
        };
        let step = e.handle(input);
        self.note_step(d, &step);
        let ready = self.devices[d].ready.is_some();
        if !step.store.is_empty() && ready && self.chance(self.faults.crash_mid_step) {
            // What the device held before this step is what its store holds.
            let before = self.devices[d].durable_states.clone();
            self.apply_actions(d, step.early);
            self.crash(d);
            self.devices[d].at_crash = before;
            self.mid_step_crashes += 1;
            return;
        }
        self.apply(d, step);
        self.note_durable(d);
        self.sample_masters(d);
    }

    /// Traces a step: its early actions, its store write, the rest.
    fn note_step(&mut self, d: usize, step: &Step) {
        let action = |t: &mut String, a: &Action| match a {
            // Messages as the bytes that go on the wire.
            Action::Send(m) => {
                let _ = write!(t, "{d} > send ");
                hex(t, &m.encode());
            }
            a => {
                let _ = write!(t, "{d} > {a:?}");
            }
        };
        for a in &step.early {
            self.note(|t| action(t, a));
        }
        if !step.store.is_empty() {
            self.note(|t| {
                let _ = write!(t, "{d} > store {:?}", step.store);
            });
        }
        for a in &step.then {
            self.note(|t| action(t, a));
        }
    }

    /// Records a device's object states after a fully carried-out step
    /// (what a kill -9 in the middle of its next step must restore).
    fn note_durable(&mut self, d: usize) {
        if self.faults.crash_mid_step == 0.0 {
            return;
        }
        if let Some(e) = self.devices[d].engine.as_ref() {
            self.devices[d].durable_states = states(e);
        }
    }

    /// Carries out a device's step: early actions, the store write, the rest.
    pub fn apply(&mut self, d: usize, step: Step) {
        self.apply_actions(d, step.early);
        for (k, v) in step.store {
            match v {
                Some(v) => self.devices[d].store.insert(k, v),
                None => self.devices[d].store.remove(&k),
            };
        }
        self.apply_actions(d, step.then);
    }

    /// Carries out actions, in order.
    fn apply_actions(&mut self, d: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(m) => {
                    if let Message::Request {
                        request: Request::Publish(obj),
                        ..
                    } = &m
                    {
                        if let Ok(GolixObject::Gobd(f)) = GolixObject::parse(obj) {
                            self.frame_first_sent.entry(f.ghid()).or_insert(self.steps);
                        }
                    }
                    if let Some(c) = self.devices[d].conn {
                        let bytes = m.encode();
                        self.server_saw.push(bytes.clone());
                        self.enqueue(Envelope::ToServer { conn: c, bytes }, c, true);
                    }
                }
                Action::Reply { req, result, .. } => {
                    self.devices[d].replies.insert(req, result);
                    self.replied_at.insert((d, req), self.steps);
                }
                Action::Push { session, push } => {
                    self.devices[d].pushes.push((session, push));
                }
                Action::Ready { user_id, identity } => {
                    self.devices[d].ready = Some((user_id, identity))
                }
                Action::LoginFailed(e) => self.devices[d].login_failed = Some(e),
                Action::HostReply(r) => self.devices[d].host_replies.push(r),
            }
        }
    }

    fn enqueue(&mut self, env: Envelope, conn: ConnId, up: bool) {
        let delay = 1 + self.rng.next_u64() % self.faults.max_delay.max(1);
        let last = self.link_time.get(&(conn, up)).copied().unwrap_or(0);
        let t = (self.now + delay).max(last + 1);
        self.link_time.insert((conn, up), t);
        self.seq += 1;
        self.queue.insert((t, self.seq), env);
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    /// Delivers one message (and maybe injects one fault). False when idle.
    pub fn step(&mut self) -> bool {
        let Some((&(t, s), _)) = self.queue.iter().next() else {
            return false;
        };
        let env = self.queue.remove(&(t, s)).expect("queued");
        self.now = self.now.max(t);
        self.steps += 1;
        match env {
            Envelope::ToServer { conn, bytes } => {
                if !self.live.contains(&conn) {
                    return true;
                }
                self.note(|t| {
                    let _ = write!(t, "server < {conn} ");
                    hex(t, &bytes);
                });
                // The bytes, as `hypergolix serve` receives them.
                let replies = self.node.handle_bytes(conn, &bytes);
                self.note_accepted(conn, &bytes, &replies);
                for (c, reply) in replies {
                    self.note(|t| {
                        let _ = write!(t, "server > {c} ");
                        hex(t, &reply.encode());
                    });
                    if let Some(dev) = self.devices.iter().position(|x| x.conn == Some(c)) {
                        let dup = matches!(
                            reply,
                            Message::Request {
                                request: Request::Push { .. },
                                ..
                            }
                        ) && self.chance(self.faults.duplicate);
                        let bytes = reply.encode();
                        if dup {
                            self.enqueue(
                                Envelope::ToDevice {
                                    dev,
                                    conn: c,
                                    bytes: bytes.clone(),
                                },
                                c,
                                false,
                            );
                        }
                        self.enqueue(
                            Envelope::ToDevice {
                                dev,
                                conn: c,
                                bytes,
                            },
                            c,
                            false,
                        );
                    }
                }
            }
            Envelope::ToDevice { dev, conn, bytes } => {
                if self.devices[dev].conn == Some(conn) {
                    let m = Message::decode(&bytes).expect("the node sends well-formed messages");
                    self.input(dev, Input::Server(m));
                }
            }
        }
        self.faults_step();
        true
    }

    /// Records a frame or container the server accepted from `conn`.
    fn note_accepted(&mut self, conn: ConnId, bytes: &[u8], replies: &[(ConnId, Message)]) {
        let Ok(Message::Request {
            token,
            request: Request::Publish(obj),
        }) = Message::decode(bytes)
        else {
            return;
        };
        let acked = replies
            .iter()
            .any(|(c, m)| *c == conn && matches!(m, Message::Ack { token: t, .. } if *t == token));
        if !acked {
            return;
        }
        match GolixObject::parse(&obj) {
            Ok(GolixObject::Gobd(_)) => {
                if let Some(d) = self.devices.iter().position(|x| x.conn == Some(conn)) {
                    self.accepted_frames.push((self.steps, d, obj));
                }
            }
            Ok(GolixObject::Geoc(g)) => {
                self.accepted_containers.insert(g.ghid(), obj);
            }
            _ => {}
        }
    }

    /// The server process dies and restarts on the same store.
    pub fn crash_server(&mut self) {
        for d in 0..self.devices.len() {
            self.disconnect(d);
        }
        let node = std::mem::replace(&mut self.node, Node::new(MemoryStore::new()));
        self.node = Node::new(node.into_backend());
        self.server_restarts += 1;
    }

    fn faults_step(&mut self) {
        let n = self.devices.len();
        if n == 0 {
            return;
        }
        if self.chance(self.faults.server_crash) {
            self.crash_server();
        }
        if self.chance(self.faults.disconnect) {
            let d = (self.rng.next_u64() % n as u64) as usize;
            self.disconnect(d);
        }
        if self.chance(self.faults.crash) {
            let d = (self.rng.next_u64() % n as u64) as usize;
            if !self.devices[d].crashed && self.devices[d].ready.is_some() {
                self.crash(d);
            }
        }
        // Devices come back after a while.
        if self.chance(0.05) {
            let d = (self.rng.next_u64() % n as u64) as usize;
            if self.devices[d].crashed {
                self.restart(d);
            } else if !self.devices[d].offline {
                self.connect(d);
            }
        }
    }

    /// Runs until nothing is in flight (at most `max` steps), then brings
    /// every device back online and runs again, until the world is quiet.
    pub fn settle(&mut self, max: u64) {
        let start = self.steps;
        loop {
            while self.step() {
                assert!(
                    self.steps - start < max,
                    "seed {}: the world did not settle in {max} steps",
                    self.seed
                );
            }
            let mut woke = false;
            for d in 0..self.devices.len() {
                if self.devices[d].crashed {
                    self.restart(d);
                    woke = true;
                } else if self.devices[d].conn.is_none() && !self.devices[d].offline {
                    self.connect(d);
                    woke = true;
                }
            }
            if !woke && self.queue.is_empty() {
                return;
            }
        }
    }

    /// Sends an app request; returns its number.
    pub fn request(&mut self, d: usize, request: AppRequest) -> u64 {
        let req = self.next_req;
        self.next_req += 1;
        self.input(
            d,
            Input::App {
                session: APP,
                req,
                request,
            },
        );
        req
    }

    /// The reply to a request (after it arrived).
    pub fn reply(&self, d: usize, req: u64) -> Option<&Result<AppReply, Error>> {
        self.devices[d].replies.get(&req)
    }

    /// Sends a request and settles the world; returns the reply.
    pub fn call(&mut self, d: usize, request: AppRequest) -> Result<AppReply, Error> {
        let r = self.request(d, request);
        self.settle(1_000_000);
        self.reply(d, r).cloned().expect("a reply")
    }

    pub fn engine(&self, d: usize) -> &Engine {
        self.devices[d].engine.as_ref().expect("engine running")
    }
}

/// Appends `bytes` in hex.
fn hex(t: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(t, "{b:02x}");
    }
}

/// Every object's state in an engine's memory.
fn states(e: &Engine) -> BTreeMap<Ghid, Vec<u8>> {
    e.addresses()
        .into_iter()
        .filter_map(|g| e.peek(&g).map(|o| (g, o.state)))
        .collect()
}
