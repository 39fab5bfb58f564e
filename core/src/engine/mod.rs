//! The Hypergolix engine: the agent that the local service and the browser
//! run. Sans-IO: the host feeds [`Input`]s to [`Engine::handle`] and carries
//! out the [`Step`] it returns: its early [`Action`]s, then its store write,
//! durably, then the rest (the step's fields name the order). The engine keeps its whole state in memory and describes every
//! change as a storage write, so a host can restart it from its store with
//! [`Engine::restore`].
//!
//! What it does, and the formats it uses: `docs/engine.md`.
//!
//! ```
//! use hypergolix_core::engine::{Action, Engine, EngineConfig, KdfParams};
//! let mut cfg = EngineConfig::new([7; 32]);
//! cfg.kdf = KdfParams::INSECURE_TEST; // tests only
//! let mut engine = Engine::new(cfg, [1; 32]);
//! let step = engine.create_account(b"correct horse").expect("account");
//! // The new account is written first; then the app may be told.
//! assert!(!step.store.is_empty());
//! assert!(step.then.iter().any(|a| matches!(a, Action::Ready { .. })));
//! ```

mod apps;
pub mod export;
pub mod keys;
mod pages;
mod record;
pub mod recovery;
mod state;
#[cfg(any(test, feature = "conformance"))]
pub mod store_conformance;
mod sync;
pub mod types;

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

pub use keys::KdfParams;
pub use types::{
    Action, ApiId, AppPush, AppReply, AppRequest, AppToken, Input, NewObject, ObjDef, SecretBytes,
    SessionId, Step, StoreWrite, API_ID_LEN, DEFAULT_LEGROOM, TOKEN_LEN,
};

use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::secret::FreshSecret;
use crate::golix::suite::cs3;
use crate::golix::{FirstParty, SecondParty};
use crate::wire::remote::{Message, Request};
use record::{AccountState, Entry, RootContent};
use state::{Agent, Kind, ObjRecord, OutItem, Sessions};
use sync::{Job, Jobs, Pending};

/// Why an account change is refused offline (hosts may wait and retry).
pub const NOT_CONNECTED: &str =
    "not connected to the persistence server (the account is read from it first)";

/// How the engine is set up by its host.
#[derive(Clone)]
pub struct EngineConfig {
    /// Argon2id parameters for the password.
    pub kdf: KdfParams,
    /// The key every local record is sealed with (the host keeps it; see
    /// `docs/engine.md`).
    pub storage_key: Zeroizing<[u8; 32]>,
    /// Legroom for new objects whose app asks for the default (0).
    pub default_legroom: u8,
    /// Entries per account-state page (see `docs/engine.md`); tests make it
    /// small to exercise paging.
    pub page_entries: usize,
}

impl EngineConfig {
    /// Defaults with the host's storage key.
    pub fn new(storage_key: [u8; 32]) -> Self {
        Self {
            kdf: KdfParams::DEFAULT,
            storage_key: Zeroizing::new(storage_key),
            default_legroom: DEFAULT_LEGROOM,
            page_entries: pages::PAGE_ENTRIES,
        }
    }
}

/// Counters a host can show or a benchmark can read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects published (each `PB` sent, retries included).
    pub published: u64,
    /// Objects signed by this engine.
    pub signed: u64,
    /// Frames refused as stale or replayed.
    pub stale_frames: u64,
    /// Concurrent-update conflicts resolved.
    pub conflicts: u64,
    /// Verified frames no master this engine holds decrypts (a rotation not
    /// yet learned, or access taken back).
    pub locked_frames: u64,
    /// Containers pushed with a frame (`!C`) that were not the frame's
    /// (ignored; the container is fetched instead).
    pub bad_pushed_containers: u64,
    /// Containers pushed with a frame and kept, sparing a `GT`.
    pub pushed_containers: u64,
}

/// The engine. See the module documentation.
pub struct Engine {
    cfg: EngineConfig,
    rng: ChaCha20Rng,
    out: Vec<Action>,
    /// Actions that need nothing of this step's store write, carried out
    /// before it: pushes of state the server already holds durably, and
    /// sending a container that was stored when its frame was built.
    early: Vec<Action>,
    /// The step being run was started by a server message.
    server_step: bool,
    /// Local records to write (keys); their values are rendered at the end of each step.
    dirty: BTreeSet<Vec<u8>>,
    agent: Option<Agent>,
    sessions: Sessions,
    online: bool,
    next_token: u16,
    pending: BTreeMap<u16, Pending>,
    /// Outbox items in flight (by sequence number).
    in_flight: BTreeSet<u64>,
    /// Dynamic objects with a Flush queued and not started.
    queued_flush: BTreeSet<Ghid>,
    /// Jobs, runnable and parked, and what they fetched (`sync/jobs.rs`).
    work: Jobs,
    /// Addresses whose entries may not be in any page yet (None: unknown,
    /// scan everything once).
    unpaged: Option<BTreeSet<Ghid>>,
    /// Merged entries of all pages and of published pages (cache).
    page_views: Option<(BTreeMap<Ghid, record::Entry>, BTreeMap<Ghid, record::Entry>)>,
    /// Shared objects still waiting for their first readable frame → who shared them.
    announce_on_load: BTreeMap<Ghid, Ghid>,
    /// Objects whose newest verified frame no master this device has can
    /// decrypt (a rotation whose master has not arrived, or access taken
    /// back): nothing is published on top of them until one does.
    /// (By address, the counter of the newest such frame; a frame whose
    /// container has not arrived yet locks its object the same way.)
    locked: BTreeMap<Ghid, u64>,
    /// Static objects received from another agent, by the GHID of their
    /// owner's binding: its debinding is how a delete reaches recipients.
    owner_bindings: BTreeMap<Ghid, Ghid>,
    /// Shares again after an unshare, waiting for their new master: the
    /// token of the app that made each, told `^S`/`^F` when it is answered.
    reshares: BTreeMap<(Ghid, Ghid), Option<AppToken>>,
    /// A recovery with recovery words under way (`sync/account.rs`).
    recovering: Option<sync::account::Recovering>,
    /// A recovery opened the account and its new root (under the new
    /// password) is not at the server yet: the opening is not complete
    /// ([`Engine::loading`] counts it).
    recovered_unpublished: bool,
    /// Root changes made, answered once the new root is at the server.
    root_waiters: Vec<(sync::ReplyTo, AppReply)>,
    /// Root changes asked for and not started, in order (one runs at a time).
    reroots: std::collections::VecDeque<Job>,
    /// A root change is running or waits for its root to be published.
    reroot_active: bool,
    /// The root record as it was before the change on its way.
    root_before: Option<Box<state::ObjRecord>>,
    /// The host's clock (ms since the Unix epoch; 0: none given). Only
    /// recorded (when an object's state changes), never acted on.
    now_ms: u64,
    stats: Stats,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("identity", &self.agent.as_ref().map(|a| a.me.ghid()))
            .field("online", &self.online)
            .finish()
    }
}

impl Engine {
    /// An engine with no account yet. `seed` seeds its random generator: the
    /// host draws it from the operating system (tests fix it).
    pub fn new(cfg: EngineConfig, seed: [u8; 32]) -> Self {
        Self {
            cfg,
            rng: ChaCha20Rng::from_seed(seed),
            out: Vec::new(),
            early: Vec::new(),
            server_step: false,
            dirty: BTreeSet::new(),
            agent: None,
            sessions: BTreeMap::new(),
            online: false,
            next_token: 0,
            pending: BTreeMap::new(),
            in_flight: BTreeSet::new(),
            queued_flush: BTreeSet::new(),
            locked: BTreeMap::new(),
            owner_bindings: BTreeMap::new(),
            reshares: BTreeMap::new(),
            recovering: None,
            recovered_unpublished: false,
            root_waiters: Vec::new(),
            reroots: std::collections::VecDeque::new(),
            reroot_active: false,
            root_before: None,
            work: Jobs::default(),
            page_views: None,
            unpaged: None,
            announce_on_load: BTreeMap::new(),
            now_ms: 0,
            stats: Stats::default(),
        }
    }

    /// The host's clock, in milliseconds since the Unix epoch: hosts set it
    /// before each input. The engine reads no clock of its own; it only
    /// records this as the time an object's state changed (`?L`).
    pub fn set_now(&mut self, unix_ms: u64) {
        self.now_ms = unix_ms;
    }

    /// The identity GHID, once logged in.
    pub fn identity(&self) -> Option<Ghid> {
        self.agent.as_ref().map(|a| a.me.ghid())
    }

    /// The user id (the account root's address), once logged in.
    pub fn user_id(&self) -> Option<Ghid> {
        self.agent.as_ref().map(|a| a.user_id)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether everything this engine acknowledged has reached the server
    /// (outbox empty, no frame waiting).
    pub fn is_synced(&self) -> bool {
        self.agent.as_ref().is_some_and(|a| {
            a.outbox.is_empty()
                && a.objects
                    .values()
                    .all(|r| r.entry.deleted || (!r.dirty && r.unsent.is_none()))
        }) && self.job_count() == 0
    }

    /// How many objects this engine knows of but has not read yet: the
    /// account state and everything it lists, just after logging in on a
    /// new device; an object shared with it whose frame has not arrived.
    /// Apps asking for such an object get [`Error::NotReady`] (or, before the
    /// account state is read, [`Error::UnknownObject`]). After a recovery
    /// ([`Engine::recover`]) the new root counts until the server has it:
    /// until then only the old password opens the account elsewhere. Hosts
    /// wait for 0 before telling a user that a login is complete.
    pub fn loading(&self) -> usize {
        let unread = self.agent.as_ref().map_or(0, |a| {
            a.objects
                .values()
                .filter(|r| !r.loaded && !r.entry.deleted)
                .count()
        });
        unread + usize::from(self.recovered_unpublished)
    }

    /// What is not yet done: a line per kind of pending work (for status
    /// output and diagnostics).
    pub fn pending_work(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(a) = self.agent.as_ref() {
            for (seq, item) in &a.outbox {
                out.push(format!(
                    "outbox #{seq}: {}{}",
                    match item {
                        OutItem::Object(b) => format!("object {:?}", b.get(..4)),
                        OutItem::Flush(g) => format!("frame of {g}"),
                    },
                    if self.in_flight.contains(seq) {
                        " (in flight)"
                    } else {
                        ""
                    }
                ));
            }
            for r in a.objects.values() {
                if r.dirty || r.unsent.is_some() {
                    out.push(format!(
                        "{:?} {}: dirty={} unsent={} queued={}",
                        r.kind,
                        r.entry.address,
                        r.dirty,
                        r.unsent.is_some(),
                        self.queued_flush.contains(&r.entry.address)
                    ));
                }
            }
        }
        out.extend(
            self.work
                .runnable
                .iter()
                .chain(self.work.parked.values().flatten())
                .map(|j| format!("job: {}", j.name())),
        );
        out
    }

    /// Whether nothing may be built on `address` now: a verified frame newer
    /// than the one this device builds on could not be read yet.
    pub(crate) fn is_locked(&self, address: &Ghid) -> bool {
        let Some(&counter) = self.locked.get(address) else {
            return false;
        };
        self.agent
            .as_ref()
            .and_then(|a| a.objects.get(address))
            .and_then(|r| r.current.as_ref())
            .is_none_or(|c| c.counter() < counter)
    }

    /// A one-line description of what this engine holds for `address` (for
    /// diagnostics; never includes state or keys).
    pub fn describe(&self, address: &Ghid) -> String {
        let Some(r) = self.agent.as_ref().and_then(|a| a.objects.get(address)) else {
            return "unknown".into();
        };
        format!(
            "{:?} owned={} deleted={} loaded={} dirty={} unsent={} counter={:?}",
            r.kind,
            r.entry.owned,
            r.entry.deleted,
            r.loaded,
            r.dirty,
            r.unsent.is_some(),
            r.current.as_ref().map(|c| c.counter())
        )
    }

    /// Test support (feature `conformance`, never in a shipped build): every
    /// master this engine holds for each object, current first. The
    /// simulation checks with them that an unshared identity reads nothing
    /// published after its unshare.
    #[cfg(feature = "conformance")]
    pub fn masters_for_tests(&self) -> Vec<(Ghid, Vec<crate::golix::Secret>)> {
        self.agent.as_ref().map_or_else(Vec::new, |a| {
            a.objects
                .values()
                .filter(|r| r.kind == Kind::App)
                .map(|r| {
                    let mut m = vec![r.entry.secret.clone()];
                    m.extend(r.entry.sharing.older.iter().cloned());
                    (r.entry.address, m)
                })
                .collect()
        })
    }

    /// The state of an object as this agent sees it (any app token), for
    /// hosts' diagnostics and tests.
    pub fn peek(&self, address: &Ghid) -> Option<ObjDef> {
        let a = self.agent.as_ref()?;
        let r = a.objects.get(address)?;
        (r.kind == Kind::App && r.loaded && !r.entry.deleted).then(|| apps::objdef(r))
    }

    /// Every app object this agent holds (addresses), deleted ones excluded.
    pub fn addresses(&self) -> Vec<Ghid> {
        self.agent.as_ref().map_or_else(Vec::new, |a| {
            a.objects
                .values()
                .filter(|r| r.kind == Kind::App && !r.entry.deleted)
                .map(|r| r.entry.address)
                .collect()
        })
    }

    /// Creates a new identity and account protected by `password`. The
    /// returned actions store it locally and (when the server is up) publish it.
    /// It has no recovery words until [`Engine::recovery_words`] makes them.
    pub fn create_account(&mut self, password: &[u8]) -> Result<Step> {
        self.new_account(password, false).map(|(step, _)| step)
    }

    /// [`Engine::create_account`] with recovery words: the phrase to show
    /// the user once (it is kept nowhere; [`Engine::recovery_words`]
    /// replaces it).
    pub fn create_account_with_words(
        &mut self,
        password: &[u8],
    ) -> Result<(Step, Zeroizing<String>)> {
        let (step, words) = self.new_account(password, true)?;
        let words = words.ok_or(Error::NotReady("no recovery words were made"))?;
        Ok((step, words))
    }

    fn new_account(
        &mut self,
        password: &[u8],
        with_words: bool,
    ) -> Result<(Step, Option<Zeroizing<String>>)> {
        if password.is_empty() {
            return Err(Error::InvalidArgument("the password is empty"));
        }
        if self.agent.is_some() {
            return Err(Error::NotAllowed("this engine already has an account"));
        }
        let me = FirstParty::generate(&mut self.rng)?;
        let gidc = me.second_party().gidc().to_bytes();

        // The account state: an ordinary dynamic object with a random master.
        let account_master = FreshSecret::generate(cs3::SUITE_ID, &mut self.rng)?.into_secret();
        let empty = AccountState::default().to_bytes()?;
        let (account_frame, account_geoc) = first_frame(&me, &account_master, &empty)?;
        let account = account_frame.dynamic_ghid();

        // The root: opened by the password. Its dynamic GHID (the user id)
        // comes from its first frame, which does not depend on its content:
        // the recovery object, made with the user id, is named in the
        // second frame, built once the agent exists.
        let pk = keys::password_keys(password, &me.ghid(), self.cfg.kdf)?;
        let export = me.export(&pk.wrap_key, &mut self.rng)?;
        let root = RootContent {
            identity_export: export.clone(),
            account,
            account_secret: account_master.clone(),
            recovery: None,
        }
        .to_bytes()?;
        let (root_frame, root_geoc) = first_frame(&me, &pk.root_master, &root)?;
        self.stats.signed += 4;
        let user_id = root_frame.dynamic_ghid();

        let account_secret = account_master.clone();
        let mut agent = Agent::new(me, user_id, account);
        for (kind, address, master, frame, geoc) in [
            (Kind::Root, user_id, pk.root_master, root_frame, root_geoc),
            (
                Kind::Account,
                account,
                account_master,
                account_frame,
                account_geoc,
            ),
        ] {
            agent.objects.insert(
                address,
                ObjRecord {
                    kind,
                    entry: Entry::internal(address, agent.me.ghid(), master),
                    state: Vec::new(),
                    changed_ms: 0,
                    dirty: false,
                    current: None,
                    container: None,
                    unsent: Some((frame.to_bytes(), geoc)),
                    rotating: None,
                    rotating_withheld: Vec::new(),
                    rekey_only: false,
                    held: None,
                    loaded: true,
                },
            );
        }
        self.agent = Some(agent);
        self.mark(state::K_ACCOUNT.to_vec());
        self.mark(state::key(state::P_CONTACT, &self.my_ghid()?.to_bytes()));
        self.enqueue(OutItem::Object(gidc));
        self.enqueue(OutItem::Flush(user_id));
        self.enqueue(OutItem::Flush(account));
        for a in [user_id, account] {
            self.mark_object(&a);
        }
        let words = if with_words {
            let (object, words) = self.make_recovery(user_id, account, &account_secret)?;
            let root = RootContent {
                identity_export: export,
                account,
                account_secret,
                recovery: Some(object),
            }
            .to_bytes()?;
            let rec = self
                .agent_mut()?
                .objects
                .get_mut(&user_id)
                .ok_or(Error::Storage("account root record missing".into()))?;
            rec.state = root.to_vec();
            rec.dirty = true;
            self.enqueue(OutItem::Flush(user_id));
            Some(words)
        } else {
            None
        };
        let identity = self.my_ghid()?;
        self.out.push(Action::Ready { user_id, identity });
        if self.online {
            self.on_server_up();
        }
        Ok((self.finish(), words))
    }

    /// Starts logging in to an existing account (on a new device, or after
    /// the local store was lost). Needs the server: the result comes later as
    /// [`Action::Ready`] or [`Action::LoginFailed`].
    pub fn login(&mut self, user_id: Ghid, password: &[u8]) -> Result<Step> {
        if self.agent.is_some() {
            return Err(Error::NotAllowed("this engine already has an account"));
        }
        if self.has_job(|j| matches!(j, Job::Login { .. })) {
            return Err(Error::NotReady("a login is already in progress"));
        }
        self.work.runnable.push(Job::Login {
            user_id,
            password: Zeroizing::new(password.to_vec()),
        });
        self.run_jobs();
        Ok(self.finish())
    }

    /// Changes the password: once the current root, read from the server,
    /// opens with `current`, publishes its next frame under `new`. The
    /// old password stops working once it is published. The outcome comes
    /// as [`Action::HostReply`] (`Done`, or [`Error::WrongPassword`] with
    /// nothing changed). Apps ask with [`AppRequest::ChangePassword`].
    pub fn change_password(&mut self, current: &[u8], new: &[u8]) -> Result<Step> {
        self.host_reroot(
            current,
            sync::account::RootChange::Password(Zeroizing::new(new.to_vec())),
        )
    }

    /// Makes new recovery words (the account had none, or they leaked):
    /// once the current root opens with `password`, publishes a recovery
    /// object for them and debinds the one the old words opened. The words
    /// come as [`Action::HostReply`] (`Words`), to be shown once. Apps ask
    /// with [`AppRequest::RecoveryWords`].
    pub fn recovery_words(&mut self, password: &[u8]) -> Result<Step> {
        self.host_reroot(password, sync::account::RootChange::RecoveryWords)
    }

    /// A root change the host asked for itself, answered as
    /// [`Action::HostReply`].
    fn host_reroot(&mut self, current: &[u8], change: sync::account::RootChange) -> Result<Step> {
        self.start_reroot(sync::ReplyTo::Host, current, change)?;
        self.run_jobs();
        self.pump();
        Ok(self.finish())
    }

    /// The key a host may lock its storage key with a second time
    /// ([`keys::lock_storage_key_for_account`]): BLAKE2b-512 of a label, the
    /// user id and the account state's master, cut to 32 bytes. Every
    /// device of the account derives the same key, and a password change
    /// leaves it as it is. None before the account is open.
    pub fn account_lock_key(&self) -> Option<Zeroizing<[u8; 32]>> {
        let a = self.agent.as_ref()?;
        let secret = a.objects.get(&a.account)?.entry.secret.to_bytes();
        Some(keys::derive_key32(
            b"hypergolix account lock v1",
            &[&a.user_id.to_bytes(), &secret[..]],
        ))
    }

    /// Whether `password` opens the account root as this device last saw
    /// it. No server is asked: it checks a password offline (the export
    /// file is locked with it); after a change made on another device that
    /// this one has not seen, the previous password is the one that
    /// matches.
    pub fn password_opens_local_root(&self, password: &[u8]) -> Result<bool> {
        let user_id = self.user_id().ok_or(Error::NotReady("not logged in"))?;
        let a = self.agent()?;
        let root = a
            .objects
            .get(&user_id)
            .ok_or(Error::Storage("account root record missing".into()))?;
        let pk = keys::password_keys(password, &a.me.ghid(), self.cfg.kdf)?;
        Ok(pk.root_master == root.entry.secret)
    }

    /// Queues a root change (checked here: logged in, a new password not empty).
    pub(crate) fn start_reroot(
        &mut self,
        to: sync::ReplyTo,
        current: &[u8],
        change: sync::account::RootChange,
    ) -> Result<()> {
        self.user_id().ok_or(Error::NotReady("not logged in"))?;
        if !self.online {
            return Err(Error::NotReady(NOT_CONNECTED));
        }
        if let sync::account::RootChange::Password(p) = &change {
            if p.is_empty() {
                return Err(Error::InvalidArgument("the new password is empty"));
            }
        }
        // One at a time, in the order asked: each is built on the root the
        // one before published.
        self.reroots.push_back(Job::Reroot {
            to,
            current: Zeroizing::new(current.to_vec()),
            change,
        });
        self.next_reroot();
        Ok(())
    }

    /// Starts the next root change asked for, unless one is under way.
    pub(crate) fn next_reroot(&mut self) {
        if self.reroot_active {
            return;
        }
        if let Some(job) = self.reroots.pop_front() {
            self.reroot_active = true;
            // The root is read from the server anew, never from a copy
            // fetched for an earlier job.
            if let Some(user_id) = self.user_id() {
                self.work.fetched.remove(&user_id);
                self.work.missing.remove(&user_id);
            }
            self.work.runnable.push(job);
        }
    }

    /// Recovers an account on a device that has none (the password and
    /// every device may be lost): `phrase` is its recovery words, `user_id`
    /// the account's. Needs the server: the result comes later as
    /// [`Action::Ready`] (the account opens as after a login, and its next
    /// root frame, under `new_password`, is published; [`Engine::loading`]
    /// counts that frame until the server has it) or
    /// [`Action::LoginFailed`] ([`Error::WrongRecoveryWords`]: nothing was
    /// changed). A phrase that is not one is refused at once
    /// ([`Error::BadRecoveryWords`]).
    pub fn recover(&mut self, user_id: Ghid, phrase: &str, new_password: &[u8]) -> Result<Step> {
        let entropy = recovery::parse_words(phrase)?;
        if self.agent.is_some() {
            return Err(Error::NotAllowed("this engine already has an account"));
        }
        if new_password.is_empty() {
            return Err(Error::InvalidArgument("the new password is empty"));
        }
        if self.recovering.is_some() || self.has_job(|j| matches!(j, Job::Login { .. })) {
            return Err(Error::NotReady("a login is already in progress"));
        }
        let keys = recovery::recovery_keys(&entropy, &user_id, self.cfg.kdf)?;
        self.recovering = Some(sync::account::Recovering {
            user_id,
            keys,
            requests: Vec::new(),
            listed: false,
            asked: false,
        });
        self.work.runnable.push(Job::Recover {
            new_password: Zeroizing::new(new_password.to_vec()),
        });
        self.run_jobs();
        Ok(self.finish())
    }

    /// Restarts an engine from its local store (every key and value the host
    /// stored). An empty store gives an engine with no account.
    pub fn restore(
        cfg: EngineConfig,
        seed: [u8; 32],
        records: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<(Self, Step)> {
        let mut e = Self::new(cfg, seed);
        let records: Vec<(Vec<u8>, Vec<u8>)> = records.into_iter().collect();
        let open = |k: &[u8], v: &[u8]| keys::open_local(&e.cfg.storage_key, k, v);
        let Some((_, acct)) = records.iter().find(|(k, _)| k == state::K_ACCOUNT) else {
            return Ok((e, Step::default()));
        };
        let (user_id, account, export) = state::decode_account(&open(state::K_ACCOUNT, acct)?)?;
        let me = FirstParty::import(&export, &e.cfg.storage_key).map_err(|_| {
            Error::Storage("the identity does not open with the storage key".into())
        })?;
        let mut agent = Agent::new(me, user_id, account);
        for (k, v) in &records {
            let Some((&p, id)) = k.split_first() else {
                continue;
            };
            if k == state::K_ACCOUNT {
                continue;
            }
            let v = open(k, v)?;
            match p {
                state::P_OBJECT => {
                    let r = ObjRecord::decode(&v)?;
                    agent.objects.insert(r.entry.address, r);
                }
                state::P_TOKEN => {
                    let t = AppToken(
                        id.try_into()
                            .map_err(|_| Error::Storage("bad token key".into()))?,
                    );
                    let s = if v.is_empty() {
                        None
                    } else {
                        Some(Ghid::from_bytes(&v)?)
                    };
                    agent.tokens.insert(t, s);
                }
                state::P_CONTACT => {
                    let sp = SecondParty::parse(&v)?;
                    agent.contacts.insert(sp.ghid(), sp);
                }
                state::P_OUTBOX => {
                    let seq = u64::from_be_bytes(
                        id.try_into()
                            .map_err(|_| Error::Storage("bad outbox key".into()))?,
                    );
                    agent.outbox.insert(seq, OutItem::decode(&v)?);
                    agent.next_seq = agent.next_seq.max(seq + 1);
                }
                state::P_SHARE => {
                    agent
                        .shares_out
                        .insert(Ghid::from_bytes(id)?, state::ShareOut::decode(&v)?);
                }
                state::P_ORPHAN => {
                    let seq = u64::from_be_bytes(
                        id.try_into()
                            .map_err(|_| Error::Storage("bad orphan key".into()))?,
                    );
                    agent.orphans.insert(seq, state::decode_orphan(&v)?);
                }
                state::P_SEEN => {
                    agent.seen.insert(Ghid::from_bytes(id)?);
                }
                state::P_PAGE => {
                    agent
                        .pages
                        .insert(Ghid::from_bytes(id)?, state::Page::decode(&v)?);
                }
                _ => return Err(Error::Storage("unknown local record".into())),
            }
        }
        for item in agent.outbox.values() {
            if let OutItem::Flush(g) = item {
                e.queued_flush.insert(*g);
            }
        }
        let identity = agent.me.ghid();
        let unpublished: Vec<Ghid> = agent
            .objects
            .values()
            .filter(|r| (r.dirty || r.unsent.is_some()) && !r.entry.deleted)
            .map(|r| r.entry.address)
            .collect();
        e.agent = Some(agent);
        for g in unpublished {
            e.requeue_if_dirty(&g);
        }
        e.out.push(Action::Ready { user_id, identity });
        let actions = e.finish();
        Ok((e, actions))
    }

    /// Feeds one input; returns what the host must do, in order.
    pub fn handle(&mut self, input: Input) -> Step {
        self.server_step = matches!(input, Input::Server(_));
        match input {
            Input::AppConnected(s) => {
                self.sessions.entry(s).or_default();
            }
            Input::AppDisconnected(s) => {
                self.sessions.remove(&s);
            }
            Input::App {
                session,
                req,
                request,
            } => {
                let result = self.app_request(session, req, request);
                if let Some(result) = result {
                    self.out.push(Action::Reply {
                        session,
                        req,
                        result,
                    });
                }
            }
            Input::ServerUp => {
                self.online = true;
                self.on_server_up();
            }
            Input::ServerDown => self.on_server_down(),
            Input::Server(m) => self.on_server_message(m),
        }
        self.run_jobs();
        self.pump();
        self.finish()
    }

    // ------------------------------------------------------------ helpers

    fn agent(&self) -> Result<&Agent> {
        self.agent.as_ref().ok_or(Error::NotReady("not logged in"))
    }

    fn agent_mut(&mut self) -> Result<&mut Agent> {
        self.agent.as_mut().ok_or(Error::NotReady("not logged in"))
    }

    fn my_ghid(&self) -> Result<Ghid> {
        Ok(self.agent()?.me.ghid())
    }

    fn mark(&mut self, key: Vec<u8>) {
        self.dirty.insert(key);
    }

    fn mark_object(&mut self, address: &Ghid) {
        if let Some(c) = self.unpaged.as_mut() {
            c.insert(*address);
        }
        self.mark(state::key(state::P_OBJECT, &address.to_bytes()));
    }

    /// The account state changed: persist it and publish a new frame.
    fn account_changed(&mut self) {
        // Cutting a page only fails if sealing fails; the entries then stay
        // in the frame itself, which is still correct.
        let _ = self.maybe_cut_page();
        if let Some(a) = self.agent.as_ref().map(|a| a.account) {
            if let Some(r) = self.agent.as_mut().and_then(|ag| ag.objects.get_mut(&a)) {
                r.dirty = true;
            }
            self.mark_object(&a);
            self.enqueue(OutItem::Flush(a));
        }
    }

    fn enqueue(&mut self, item: OutItem) {
        if let OutItem::Flush(g) = &item {
            if !self.queued_flush.insert(*g) {
                return;
            }
        }
        let Some(a) = self.agent.as_mut() else {
            return;
        };
        let seq = a.next_seq;
        a.next_seq += 1;
        a.outbox.insert(seq, item);
        self.mark(state::key(state::P_OUTBOX, &seq.to_be_bytes()));
    }

    /// Sends a request to the server after this step's store write. In a
    /// step started by the server, a request that only reads (`GT`, `?E`,
    /// `?B`, `?D`) goes before the write instead: it changes nothing at the
    /// server and its answer is handled in a later step, after this one's
    /// write; a crash in between only means asking again. (This takes a
    /// store write off the path from a pushed frame to the fetch of its
    /// container.)
    fn send(&mut self, request: Request, pending: Pending) {
        let read_only = matches!(
            request,
            Request::Get(_)
                | Request::Exists(_)
                | Request::ListBindings(_)
                | Request::ListDebindings(_)
        );
        if let Some(a) = self.request(request, pending) {
            if self.server_step && read_only {
                self.early.push(a);
            } else {
                self.out.push(a);
            }
        }
    }

    /// [`Engine::send`], carried out before this step's store write: only
    /// for bytes that were already durable before this step.
    fn send_early(&mut self, request: Request, pending: Pending) {
        if let Some(a) = self.request(request, pending) {
            self.early.push(a);
        }
    }

    fn request(&mut self, request: Request, pending: Pending) -> Option<Action> {
        if !self.online {
            return None;
        }
        let mut token = self.next_token;
        while self.pending.contains_key(&token) {
            token = token.wrapping_add(1);
        }
        self.next_token = token.wrapping_add(1);
        if matches!(request, Request::Publish(_)) {
            self.stats.published += 1;
        }
        self.pending.insert(token, pending);
        Some(Action::Send(Message::Request { token, request }))
    }

    /// Tells an app something. In a step started by the server, the pushes
    /// are of state the server holds durably (frames it pushed or served;
    /// replies in such steps are only share outcomes), so they need not wait
    /// for this device's store write: a crash before it loses nothing the
    /// server cannot give again.
    fn push_to(&mut self, session: SessionId, push: AppPush) {
        let a = Action::Push { session, push };
        if self.server_step {
            self.early.push(a);
        } else {
            self.out.push(a);
        }
    }

    /// Renders the local writes of this step and returns the actions, the
    /// store write first.
    fn finish(&mut self) -> Step {
        let keys = std::mem::take(&mut self.dirty);
        let mut writes = Vec::with_capacity(keys.len());
        for k in keys {
            match self.render(&k) {
                Ok(v) => writes.push((k, v)),
                // Rendering only fails if sealing fails, which it cannot with a
                // valid key; keep the key dirty rather than lose the writself.
                Err(_) => {
                    self.dirty.insert(k);
                }
            }
        }
        self.server_step = false;
        Step {
            early: std::mem::take(&mut self.early),
            store: writes,
            then: std::mem::take(&mut self.out),
        }
    }

    fn render(&mut self, k: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(a) = self.agent.as_ref() else {
            return Ok(None);
        };
        let Some((&p, id)) = k.split_first() else {
            return Ok(None);
        };
        let plain: Option<Zeroizing<Vec<u8>>> = if k == state::K_ACCOUNT {
            let export = a.me.export(&self.cfg.storage_key, &mut self.rng)?;
            Some(Zeroizing::new(state::encode_account(
                &a.user_id, &a.account, &export,
            )?))
        } else {
            let g = || Ghid::from_bytes(id);
            match p {
                state::P_OBJECT => match a.objects.get(&g()?) {
                    Some(r) => Some(Zeroizing::new(r.encode()?)),
                    None => None,
                },
                state::P_TOKEN => {
                    let t = AppToken(
                        id.try_into()
                            .map_err(|_| Error::Storage("bad token key".into()))?,
                    );
                    a.tokens.get(&t).map(|s| {
                        Zeroizing::new(s.map(|g| g.to_bytes().to_vec()).unwrap_or_default())
                    })
                }
                state::P_CONTACT => a
                    .contacts
                    .get(&g()?)
                    .map(|c| Zeroizing::new(c.gidc().to_bytes())),
                state::P_OUTBOX => {
                    let seq = u64::from_be_bytes(
                        id.try_into()
                            .map_err(|_| Error::Storage("bad outbox key".into()))?,
                    );
                    a.outbox.get(&seq).map(|i| Zeroizing::new(i.encode()))
                }
                state::P_SHARE => a.shares_out.get(&g()?).map(|s| Zeroizing::new(s.encode())),
                state::P_ORPHAN => {
                    let seq = u64::from_be_bytes(
                        id.try_into()
                            .map_err(|_| Error::Storage("bad orphan key".into()))?,
                    );
                    a.orphans
                        .get(&seq)
                        .map(|o| Zeroizing::new(state::encode_orphan(o)))
                }
                state::P_SEEN => a.seen.contains(&g()?).then(|| Zeroizing::new(Vec::new())),
                state::P_PAGE => match a.pages.get(&g()?) {
                    Some(p) => Some(Zeroizing::new(p.encode()?)),
                    None => None,
                },
                _ => None,
            }
        };
        match plain {
            Some(v) => Ok(Some(keys::seal_local(
                &self.cfg.storage_key,
                k,
                &v,
                &mut self.rng,
            )?)),
            None => Ok(None),
        }
    }
}

/// Builds the first frame (counter 0) of a dynamic object of `me` and its
/// container, encrypted with the frame secret derived from `master`.
pub(crate) fn first_frame(
    me: &FirstParty,
    master: &crate::golix::Secret,
    plaintext: &[u8],
) -> Result<(crate::golix::Gobd, Vec<u8>)> {
    let secret = keys::frame_secret(master, &me.ghid(), None, None)?;
    let (geoc, _) = me.make_container(secret, plaintext)?;
    let frame = me.make_first_frame(&geoc.ghid())?;
    Ok((frame, geoc.to_bytes()))
}
