//! Work that waits for objects from the server: a login, an incoming
//! share, a frame whose container has not arrived, an object the account
//! state lists. A job is a value ([`Job`]); stepping it
//! ([`Engine::step`]) either finishes it or asks for an object it lacks
//! ([`Need`]), in which case it is parked on that object's GHID and stepped
//! again, from the start, when the object arrives (the answer to the `GT`
//! it sent) or after a reconnect; so whatever a step does before its last
//! `need!` must be safe to do again. A step returns `Ok(Progress::Done)`,
//! `Ok(Progress::Waiting)` (through `need!`), or an error, which
//! [`Engine::job_failed`] reports to whoever waits (a failed login, an
//! app's share, the sharer of a request that cannot be taken in).

use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

use super::super::state;
use super::super::types::{Action, AppReply, SessionId};
use super::super::Engine;
use super::account::RootChange;
use super::Pending;
use crate::error::Error;
use crate::golix::ghid::Ghid;
use crate::golix::{Garq, Gobd, SecondParty, Secret};
use crate::wire::remote::Request;

/// Work that waits for objects from the server.
pub(crate) enum Job {
    /// Log in: fetch the root, open it with the password.
    Login {
        user_id: Ghid,
        password: Zeroizing<Vec<u8>>,
    },
    /// Change the account root (a password, recovery words): read it from
    /// the server, open it with the current password, build the next frame.
    Reroot {
        to: ReplyTo,
        current: Zeroizing<Vec<u8>>,
        change: RootChange,
    },
    /// Recover the account with its words (`Engine::recovering` holds
    /// what they gave), under a new password.
    Recover { new_password: Zeroizing<Vec<u8>> },
    /// Apply a frame of a known object once its container is here.
    Frame {
        address: Ghid,
        frame: Gobd,
        announce: Option<Ghid>,
    },
    /// Load an object known from the account state.
    Load {
        address: Ghid,
        announce: Option<Ghid>,
    },
    /// Share an object once the recipient's identity is here.
    Share {
        session: u64,
        req: u64,
        address: Ghid,
        recipient: Ghid,
    },
    /// Send an object's current master to a recipient that lacks it.
    Rekey { address: Ghid, recipient: Ghid },
    /// Check the owner's debinding of a received static object.
    Debound { address: Ghid, gdxx: Ghid },
    /// Open a request addressed to this agent.
    Incoming { garq: Garq },
    /// Read a page of the account state.
    LoadPage { page: Ghid, secret: Secret },
    /// Take in an object shared with this agent.
    Adopt {
        address: Ghid,
        secret: Secret,
        origin: Ghid,
        request: Option<Ghid>,
    },
}

impl Job {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Job::Login { .. } => "login",
            Job::Reroot { .. } => "change the account root",
            Job::Recover { .. } => "recover the account",
            Job::Frame { .. } => "apply a frame",
            Job::Load { .. } => "load an object",
            Job::Share { .. } => "share",
            Job::Rekey { .. } => "send a new master",
            Job::Debound { .. } => "check a delete",
            Job::Incoming { .. } => "open a request",
            Job::Adopt { .. } => "take in a shared object",
            Job::LoadPage { .. } => "read an account page",
        }
    }
}

/// Who is told how a job that changes the account ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ReplyTo {
    /// An app's request.
    App { session: SessionId, req: u64 },
    /// The host's own call ([`Action::HostReply`]).
    Host,
}

impl ReplyTo {
    /// The action that tells it `result`.
    pub(crate) fn action(self, result: Result<AppReply, Error>) -> Action {
        match self {
            ReplyTo::App { session, req } => Action::Reply {
                session,
                req,
                result,
            },
            ReplyTo::Host => Action::HostReply(result),
        }
    }
}

/// What asking for an object gives a job.
pub(crate) enum Need<T> {
    /// Here it is.
    Have(T),
    /// Asked for (or already on its way): the job parks on it.
    Wait,
    /// The server does not have it: the job fails.
    Missing,
}

/// Where a job's step left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Finished (it may have failed: that is reported by its step).
    Done,
    /// Parked until the object it asked for arrives.
    Waiting,
}

/// What [`Engine::step`] did with a job.
enum Stepped {
    Done,
    Parked(Box<Job>),
}

/// The job state: what is runnable, what is parked on which object, and
/// the objects fetched for them.
#[derive(Default)]
pub(crate) struct Jobs {
    /// Jobs ready to run.
    pub(crate) runnable: Vec<Job>,
    /// Jobs waiting for an object from the server, by its GHID.
    pub(crate) parked: BTreeMap<Ghid, Vec<Job>>,
    /// What the job being stepped waits for (set by `need`).
    pub(crate) parked_on: Option<Ghid>,
    /// Objects fetched for jobs, by GHID (cleared when no job is left).
    pub(crate) fetched: BTreeMap<Ghid, Vec<u8>>,
    /// GHIDs requested and not yet answered.
    pub(crate) fetching: BTreeSet<Ghid>,
    /// GHIDs the server does not have (cleared with `fetched`).
    pub(crate) missing: BTreeSet<Ghid>,
}

impl Jobs {
    /// Whether a job like this is already runnable or parked.
    pub(crate) fn any(&self, f: impl Fn(&Job) -> bool) -> bool {
        self.runnable.iter().any(&f) || self.parked.values().flatten().any(&f)
    }

    /// Number of jobs, runnable and parked.
    pub(crate) fn count(&self) -> usize {
        self.runnable.len() + self.parked.values().map(Vec::len).sum::<usize>()
    }

    /// Jobs waiting for `g` can run again.
    pub(crate) fn unpark(&mut self, g: &Ghid) {
        if let Some(js) = self.parked.remove(g) {
            self.runnable.extend(js);
        }
    }

    /// Every parked job runs again (after a reconnect: their requests were
    /// lost, and so is what was being fetched).
    pub(crate) fn unpark_all(&mut self) {
        self.fetching.clear();
        let all: Vec<Job> = std::mem::take(&mut self.parked)
            .into_values()
            .flatten()
            .collect();
        self.runnable.extend(all);
    }
}

/// Unwraps a [`Need`] in a job's step: parks the job (`Ok(Waiting)`) or
/// fails it (`UnknownObject`).
macro_rules! need {
    ($e:expr) => {
        match $e {
            Need::Have(v) => v,
            Need::Wait => return Ok(Progress::Waiting),
            Need::Missing => return Err(Error::UnknownObject),
        }
    };
}
pub(crate) use need;

impl Engine {
    /// Whether a job like this is already runnable or parked.
    pub(crate) fn has_job(&self, f: impl Fn(&Job) -> bool) -> bool {
        self.work.any(f)
    }

    /// Number of jobs, runnable and parked.
    pub(crate) fn job_count(&self) -> usize {
        self.work.count()
    }

    /// Runs every runnable job until each is done or parked on the object
    /// it waits for (a job is stepped again only when that object arrives).
    pub(crate) fn run_jobs(&mut self) {
        while let Some(job) = self.work.runnable.pop() {
            self.work.parked_on = None;
            match self.step(job) {
                Stepped::Done => {}
                Stepped::Parked(j) => {
                    // A wait always comes from `need`, which says what for.
                    let g = self.work.parked_on.unwrap_or(Ghid::new(
                        crate::golix::AddressAlgorithm::Blake2b512,
                        [0; 64],
                    ));
                    self.work.parked.entry(g).or_default().push(*j);
                }
            }
        }
        if self.work.parked.is_empty() {
            self.work.fetched.clear();
            self.work.missing.clear();
        }
    }

    pub(crate) fn need(&mut self, g: &Ghid) -> Need<Vec<u8>> {
        if let Some(b) = self.work.fetched.get(g) {
            return Need::Have(b.clone());
        }
        if self.work.missing.contains(g) {
            return Need::Missing;
        }
        if self.online && self.work.fetching.insert(*g) {
            self.send(Request::Get(*g), Pending::Get(*g));
        }
        self.work.parked_on = Some(*g);
        Need::Wait
    }

    pub(crate) fn need_identity(&mut self, g: &Ghid) -> Need<SecondParty> {
        if let Some(sp) = self.agent.as_ref().and_then(|a| a.contacts.get(g)) {
            return Need::Have(sp.clone());
        }
        match self.need(g) {
            Need::Have(b) => match SecondParty::parse(&b) {
                Ok(sp) if sp.ghid() == *g => {
                    if let Some(a) = self.agent.as_mut() {
                        a.contacts.insert(*g, sp.clone());
                        self.mark(state::key(state::P_CONTACT, &g.to_bytes()));
                    }
                    Need::Have(sp)
                }
                _ => Need::Missing,
            },
            Need::Wait => Need::Wait,
            Need::Missing => Need::Missing,
        }
    }

    fn step(&mut self, job: Job) -> Stepped {
        let res = match &job {
            Job::Login { user_id, password } => {
                let (u, p) = (*user_id, password.clone());
                self.step_login(u, &p)
            }
            Job::Reroot {
                to,
                current,
                change,
            } => {
                let (t, c) = (*to, current.clone());
                let ch = change.clone();
                self.step_reroot(t, &c, &ch)
            }
            Job::Recover { new_password } => {
                let p = new_password.clone();
                self.step_recover(&p)
            }
            Job::Frame {
                address,
                frame,
                announce,
            } => {
                let (a, f, n) = (*address, frame.clone(), *announce);
                self.step_frame(a, &f, n)
            }
            Job::Load { address, announce } => {
                let (a, n) = (*address, *announce);
                self.step_load(a, n)
            }
            Job::Share {
                session,
                req,
                address,
                recipient,
            } => {
                let (s, r, a, rc) = (*session, *req, *address, *recipient);
                self.step_share(s, r, a, rc)
            }
            Job::Rekey { address, recipient } => {
                let (a, r) = (*address, *recipient);
                self.step_rekey(a, r)
            }
            Job::Debound { address, gdxx } => {
                let (a, x) = (*address, *gdxx);
                self.step_debound(a, x)
            }
            Job::Incoming { garq } => {
                let g = garq.clone();
                self.step_incoming(&g)
            }
            Job::LoadPage { page, secret } => {
                let (p, sec) = (*page, secret.clone());
                self.step_load_page(p, &sec)
            }
            Job::Adopt {
                address,
                secret,
                origin,
                request,
            } => {
                let (a, s, o, r) = (*address, secret.clone(), *origin, *request);
                self.step_adopt(a, &s, o, r)
            }
        };
        match res {
            Ok(Progress::Waiting) => Stepped::Parked(Box::new(job)),
            Ok(Progress::Done) => Stepped::Done,
            Err(e) => {
                self.job_failed(job, e);
                Stepped::Done
            }
        }
    }

    pub(crate) fn job_failed(&mut self, job: Job, e: Error) {
        match job {
            Job::Login { .. } | Job::Recover { .. } => {
                self.recovering = None;
                self.out.push(Action::LoginFailed(e));
            }
            Job::Reroot { to, .. } => {
                self.out.push(to.action(Err(e)));
                self.reroot_active = false;
                self.next_reroot();
            }
            Job::Share { session, req, .. } => self.out.push(Action::Reply {
                session,
                req,
                result: Err(e),
            }),
            Job::Adopt {
                origin,
                request: Some(r),
                ..
            } if self.agent.as_ref().is_some_and(|a| !a.seen.contains(&r)) => {
                self.remember(r);
                self.answer_request(&origin, r, false);
                self.debind(&r);
            }
            _ => {}
        }
    }
}
