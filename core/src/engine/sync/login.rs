//! Opening an account from the server: the root frame, its container
//! opened with the password, then the account state.

use zeroize::Zeroizing;

use super::super::keys::{self, frame_secret};
use super::super::record::{Entry, RootContent};
use super::super::state::{self, Agent, Kind, ObjRecord};
use super::super::types::Action;
use super::super::Engine;
use super::jobs::{need, Need, Progress};
use crate::error::{Error, Result};
use crate::golix::ghid::Ghid;
use crate::golix::{FirstParty, Geoc, Gobd, SecondParty, Secret};

impl Engine {
    /// Reads the root frame of `user_id` and its container from the
    /// server, each verified as signed by the frame's binder (the
    /// account's identity), which is returned too.
    pub(crate) fn need_root(&mut self, user_id: Ghid) -> Result<Need<(Gobd, SecondParty, Geoc)>> {
        let frame = match self.need(&user_id) {
            Need::Have(b) => Gobd::parse(&b)?,
            Need::Wait => return Ok(Need::Wait),
            Need::Missing => return Ok(Need::Missing),
        };
        if frame.dynamic_ghid() != user_id {
            return Err(Error::InvalidArgument("the user id is not an account root"));
        }
        let id = match self.need_identity(&frame.binder()) {
            Need::Have(id) => id,
            Need::Wait => return Ok(Need::Wait),
            Need::Missing => return Ok(Need::Missing),
        };
        frame.verify(&id)?;
        let geoc = match self.need(&frame.target()) {
            Need::Have(b) => Geoc::parse(&b)?,
            Need::Wait => return Ok(Need::Wait),
            Need::Missing => return Ok(Need::Missing),
        };
        if geoc.author() != id.ghid() {
            return Err(Error::WrongIdentity);
        }
        geoc.verify(&id)?;
        Ok(Need::Have((frame, id, geoc)))
    }

    /// Opens a root container with `password` ([`Error::WrongPassword`] if
    /// it does not): its content, the password's keys, the plaintext.
    pub(crate) fn open_root_with(
        &self,
        frame: &Gobd,
        id: &SecondParty,
        geoc: &Geoc,
        password: &[u8],
    ) -> Result<(RootContent, keys::PasswordKeys, Zeroizing<Vec<u8>>)> {
        let pk = keys::password_keys(password, &id.ghid(), self.cfg.kdf)?;
        let secret = frame_secret(
            &pk.root_master,
            &id.ghid(),
            frame.targets().get(1),
            Some(&frame.dynamic_ghid()),
        )?;
        let plain = Zeroizing::new(
            geoc.decrypt(&secret.into_secret())
                .map_err(|_| Error::WrongPassword)?,
        );
        Ok((RootContent::parse(&plain)?, pk, plain))
    }

    pub(crate) fn step_login(&mut self, user_id: Ghid, password: &[u8]) -> Result<Progress> {
        if self.agent.is_some() {
            return Err(Error::NotAllowed("already logged in"));
        }
        let (frame, id, geoc) = need!(self.need_root(user_id)?);
        let (root, pk, plain) = self.open_root_with(&frame, &id, &geoc, password)?;
        let me = FirstParty::import(&root.identity_export, &pk.wrap_key)
            .map_err(|_| Error::WrongPassword)?;
        if me.ghid() != id.ghid() {
            return Err(Error::WrongIdentity);
        }
        let identity = self.hold_account(
            me,
            ObjRecord::root(
                Entry::internal(user_id, id.ghid(), pk.root_master),
                frame,
                plain.to_vec(),
                false,
            ),
            root.account,
            root.account_secret,
        );
        self.out.push(Action::Ready { user_id, identity });
        if self.online {
            self.on_server_up();
        }
        Ok(Progress::Done)
    }

    /// Makes `me` this device's agent for the account its root record
    /// `root` is for (on the server's root frame): that record, and the
    /// account state (`account`, under `account_secret`), to be read.
    /// Returns the identity; the caller says [`Action::Ready`].
    pub(crate) fn hold_account(
        &mut self,
        me: FirstParty,
        root: ObjRecord,
        account: Ghid,
        account_secret: Secret,
    ) -> Ghid {
        let user_id = root.entry.address;
        let mut agent = Agent::new(me, user_id, account);
        let entry = Entry::internal(account, agent.me.ghid(), account_secret);
        agent.objects.insert(user_id, root);
        agent
            .objects
            .insert(account, ObjRecord::unloaded(Kind::Account, entry));
        let identity = agent.me.ghid();
        self.agent = Some(agent);
        self.mark(state::K_ACCOUNT.to_vec());
        self.mark(state::key(state::P_CONTACT, &identity.to_bytes()));
        self.mark_object(&user_id);
        self.mark_object(&account);
        identity
    }
}
