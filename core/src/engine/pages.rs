//! Pages of the account state. The account state's frame names immutable
//! pages (static objects of the agent, [`PAGE_ENTRIES`] entries each) and
//! carries only the entries the pages do not already say, so creating or
//! receiving an object republishes a small frame instead of the whole table.
//! Pages only accumulate; merging is a union in which a deletion wins.

use std::collections::BTreeMap;

use super::record::{page_parse, page_to_bytes, AccountState, Entry, KEEP_OLDER_MASTERS};
use super::state::{self, Kind, ObjRecord, OutItem, Page};
use super::sync::jobs::{need, Need, Progress};
use super::sync::{Job, Pending};
use super::Engine;
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::secret::FreshSecret;
use crate::golix::suite::cs3;
use crate::golix::{Geoc, Secret};
use crate::wire::remote::Request;

/// Entries per page by default.
pub(crate) const PAGE_ENTRIES: usize = 64;

/// Merges `remote` into `local`: a deletion wins; an entry whose api_id is
/// not known yet (a share whose frame was not read) takes the other's.
/// Returns whether `local` changed.
pub(crate) fn merge_entry(local: &mut Entry, remote: &Entry) -> bool {
    let mut changed = false;
    if remote.deleted && !local.deleted {
        local.deleted = true;
        changed = true;
    }
    if local.api_id.0 == [0; 65] && remote.api_id.0 != [0; 65] {
        local.api_id = remote.api_id;
        local.is_link = remote.is_link;
        changed = true;
    }
    changed | merge_sharing(local, remote)
}

/// Merges masters and recipients (`docs/protocol/revocation.md`): the
/// master of the higher rotation is current, with its `withheld` (a tie,
/// which the server's frame order prevents for an owner, goes to the
/// greater secret so every device picks the same); the master it replaces
/// becomes one of this device's older ones. The same master: the greater
/// rotation count and both `withheld`. For each recipient the greater turn
/// and `sent` win. Older masters are not merged (each device keeps those
/// it replaced; a bounded union would never settle).
fn merge_sharing(local: &mut Entry, remote: &Entry) -> bool {
    let mut changed = false;
    let (l, r) = (&mut local.sharing, &remote.sharing);
    if local.secret == remote.secret {
        if r.rotation > l.rotation {
            l.rotation = r.rotation;
            changed = true;
        }
        for g in &r.withheld {
            if !l.withheld.contains(g) {
                l.withheld.push(*g);
                super::record::sort_ghids(&mut l.withheld);
                changed = true;
            }
        }
    } else {
        let remote_wins = r.rotation > l.rotation
            || (r.rotation == l.rotation && *remote.secret.to_bytes() > *local.secret.to_bytes());
        if remote_wins {
            local.replace_master(remote.secret.clone(), r.rotation, KEEP_OLDER_MASTERS);
            local.sharing.withheld.clone_from(&r.withheld);
            changed = true;
        }
    }
    let (l, r) = (&mut local.sharing, &remote.sharing);
    for x in &r.recipients {
        match l.recipients.iter_mut().find(|y| y.ghid == x.ghid) {
            None => {
                l.recipients.push(x.clone());
                super::record::sort_recipients(&mut l.recipients);
                changed = true;
            }
            Some(y) => {
                // `sent` is a fact about the master, whatever the turn.
                if x.turn > y.turn || x.sent > y.sent {
                    y.turn = y.turn.max(x.turn);
                    y.sent = y.sent.max(x.sent);
                    changed = true;
                }
            }
        }
    }
    changed | l.settle_withheld()
}

fn fold(view: &mut BTreeMap<Ghid, Entry>, e: &Entry) {
    match view.get_mut(&e.address) {
        Some(v) => {
            merge_entry(v, e);
        }
        None => {
            view.insert(e.address, e.clone());
        }
    }
}

impl Engine {
    /// What the pages say, merged (only published pages, or all). Cached
    /// until the pages change.
    fn page_view(&mut self, published_only: bool) -> &BTreeMap<Ghid, Entry> {
        if self.page_views.is_none() {
            let mut all = BTreeMap::new();
            let mut published = BTreeMap::new();
            if let Some(a) = self.agent.as_ref() {
                for p in a.pages.values() {
                    for e in &p.entries {
                        fold(&mut all, e);
                        if p.unpublished.is_none() {
                            fold(&mut published, e);
                        }
                    }
                }
            }
            self.page_views = Some((all, published));
        }
        let (all, published) = self.page_views.get_or_insert_default();
        if published_only {
            published
        } else {
            all
        }
    }

    /// This device's entries that the pages (all, or only the published
    /// ones) do not already say. Looks only at addresses whose record was
    /// written since they were last found in a page, so it costs what
    /// changed, not what the agent holds.
    fn delta(&mut self, published_only: bool) -> Vec<Entry> {
        self.page_view(false);
        if self.unpaged.is_none() {
            let all = self.agent.as_ref().map_or_else(Default::default, |a| {
                a.objects
                    .values()
                    .filter(|r| r.kind == Kind::App)
                    .map(|r| r.entry.address)
                    .collect()
            });
            self.unpaged = Some(all);
        }
        let (Some(a), Some((all, _)), Some(cands)) = (
            self.agent.as_ref(),
            self.page_views.as_ref(),
            self.unpaged.as_mut(),
        ) else {
            return Vec::new();
        };
        let mut out = BTreeMap::new();
        cands.retain(|g| match a.objects.get(g) {
            Some(r) if r.kind == Kind::App => {
                if all.get(g).is_some_and(|v| v.same(&r.entry)) {
                    false
                } else {
                    out.insert(*g, r.entry.clone());
                    true
                }
            }
            _ => false,
        });
        if published_only {
            for p in a.pages.values().filter(|p| p.unpublished.is_some()) {
                for e in &p.entries {
                    if let Some(r) = a.objects.get(&e.address) {
                        out.insert(e.address, r.entry.clone());
                    }
                }
            }
        }
        out.into_values().collect()
    }

    /// Folds a page's entries into the cached views.
    fn fold_into_views(&mut self, entries: &[Entry], published: bool) {
        if let Some((all, pubd)) = self.page_views.as_mut() {
            for e in entries {
                fold(all, e);
                if published {
                    fold(pubd, e);
                }
            }
        }
    }

    /// The account state to publish now: published pages and the rest.
    pub(crate) fn account_frame_state(&mut self) -> AccountState {
        let entries = self.delta(true);
        let Some(a) = self.agent.as_ref() else {
            return AccountState::default();
        };
        AccountState {
            pages: a
                .pages
                .iter()
                .filter(|(_, p)| p.unpublished.is_none())
                .map(|(g, p)| (*g, p.secret.clone()))
                .collect(),
            entries,
            tokens: a.tokens.iter().map(|(t, s)| (*t, *s)).collect(),
        }
    }

    /// Cuts a page when enough entries are outside every page.
    pub(crate) fn maybe_cut_page(&mut self) -> Result<()> {
        let delta = self.delta(false);
        let size = self.cfg.page_entries.max(1);
        if delta.len() < size {
            return Ok(());
        }
        let entries: Vec<Entry> = delta.into_iter().take(size).collect();
        let entries_copy = entries.clone();
        let fresh = FreshSecret::generate(cs3::SUITE_ID, &mut self.rng)?;
        let a = self.agent()?;
        let (geoc, secret) = a.me.make_container(fresh, &page_to_bytes(&entries)?)?;
        let gobs = a.me.make_static_binding(&geoc.ghid());
        self.stats.signed += 2;
        let g = geoc.ghid();
        let bytes = geoc.to_bytes();
        self.agent_mut()?.pages.insert(
            g,
            Page {
                secret,
                entries,
                unpublished: Some(bytes.clone()),
            },
        );
        self.mark(state::key(state::P_PAGE, &g.to_bytes()));
        if let Some(c) = self.unpaged.as_mut() {
            for e in &entries_copy {
                c.remove(&e.address);
            }
        }
        self.fold_into_views(&entries_copy, false);
        self.enqueue(OutItem::Object(gobs.to_bytes()));
        self.enqueue(OutItem::Object(bytes));
        Ok(())
    }

    /// An outbox object was acknowledged: if it was a page, the account
    /// state can now name it.
    pub(crate) fn object_published(&mut self, bytes: &[u8]) {
        let Ok(geoc) = Geoc::parse(bytes) else {
            return;
        };
        let g = geoc.ghid();
        let Some(p) = self.agent.as_mut().and_then(|a| a.pages.get_mut(&g)) else {
            return;
        };
        if p.unpublished.take().is_some() {
            let entries = p.entries.clone();
            self.fold_into_views(&entries, true);
            self.mark(state::key(state::P_PAGE, &g.to_bytes()));
            self.account_changed();
        }
    }

    /// Merges another device's account state (see the module documentation).
    pub(crate) fn merge_account(&mut self, remote: AccountState) {
        let Some(a) = self.agent.as_ref() else {
            return;
        };
        let mut view = BTreeMap::new();
        let mut unknown = Vec::new();
        for (g, secret) in &remote.pages {
            match a.pages.get(g) {
                Some(p) => {
                    for e in &p.entries {
                        fold(&mut view, e);
                    }
                }
                None => unknown.push((*g, secret.clone())),
            }
        }
        for e in &remote.entries {
            fold(&mut view, e);
        }
        for (page, secret) in unknown {
            let queued = self.has_job(|j| matches!(j, Job::LoadPage { page: q, .. } if *q == page));
            if !queued {
                self.work.runnable.push(Job::LoadPage { page, secret });
            }
        }
        self.merge_entries(view.values().cloned().collect());
        let Some(a) = self.agent.as_mut() else {
            return;
        };
        let mut changed = a.objects.values().any(|r| {
            r.kind == Kind::App && !view.get(&r.entry.address).is_some_and(|v| v.same(&r.entry))
        });
        let remote_tokens: BTreeMap<_, _> = remote.tokens.into_iter().collect();
        for (t, s) in &remote_tokens {
            let local = a.tokens.entry(*t).or_insert(None);
            if local.is_none() && s.is_some() {
                *local = *s;
            }
            self.dirty.insert(state::key(state::P_TOKEN, &t.0));
        }
        changed |= a
            .tokens
            .iter()
            .any(|(t, s)| remote_tokens.get(t) != Some(s));
        if changed {
            self.account_changed();
        }
    }

    /// Takes in entries learned from another device: new objects are
    /// fetched (and, if shared with this agent, announced to its apps);
    /// deletions are applied.
    pub(crate) fn merge_entries(&mut self, entries: Vec<Entry>) {
        let mut load = Vec::new();
        let mut deleted = Vec::new();
        let mut touched = Vec::new();
        let Some(a) = self.agent.as_mut() else {
            return;
        };
        for e in entries {
            match a.objects.get_mut(&e.address) {
                None => {
                    let address = e.address;
                    if !e.deleted {
                        let announce = (!e.owned).then_some(e.author);
                        load.push((address, announce, e.dynamic));
                    }
                    a.objects.insert(address, ObjRecord::unloaded(Kind::App, e));
                    touched.push(address);
                }
                Some(r) => {
                    let was_deleted = r.entry.deleted;
                    let mut remote = e.clone();
                    remote.deleted = false;
                    if merge_entry(&mut r.entry, &remote) {
                        touched.push(e.address);
                    }
                    if e.deleted && !was_deleted {
                        deleted.push(e.address);
                    }
                }
            }
        }
        for g in &touched {
            self.mark_object(g);
            // A master or a recipient may have changed.
            self.retry_locked(g);
            self.reconcile_sharing(g);
        }
        for (address, announce, dynamic) in load {
            if dynamic {
                self.send(Request::Subscribe(address), Pending::Ignore);
            }
            self.work.runnable.push(Job::Load { address, announce });
        }
        for d in deleted {
            self.mark_deleted(&d);
        }
    }

    /// Job: read a page named by another device's account state.
    pub(crate) fn step_load_page(&mut self, page: Ghid, secret: &Secret) -> Result<Progress> {
        if self.agent()?.pages.contains_key(&page) {
            return Ok(Progress::Done);
        }
        let bytes = need!(self.need(&page));
        let geoc = Geoc::parse(&bytes)?;
        let me = self.agent()?.me.second_party().clone();
        if geoc.author() != me.ghid() {
            return Err(Error::WrongIdentity);
        }
        geoc.verify(&me)?;
        let entries = page_parse(&geoc.decrypt(secret)?)?;
        self.agent_mut()?.pages.insert(
            page,
            Page {
                secret: secret.clone(),
                entries: entries.clone(),
                unpublished: None,
            },
        );
        self.mark(state::key(state::P_PAGE, &page.to_bytes()));
        self.fold_into_views(&entries, true);
        self.merge_entries(entries);
        Ok(Progress::Done)
    }
}
