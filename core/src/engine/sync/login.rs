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
use crate::golix::{FirstParty, Geoc, Gobd, SecondParty};

impl Engine {
    pub(crate) fn step_login(&mut self, user_id: Ghid, password: &[u8]) -> Result<Progress> {
        if self.agent.is_some() {
            return Err(Error::NotAllowed("already logged in"));
        }
        let frame = Gobd::parse(&need!(self.need(&user_id)))?;
        if frame.dynamic_ghid() != user_id {
            return Err(Error::InvalidArgument("the user id is not an account root"));
        }
        let id = SecondParty::parse(&need!(self.need(&frame.binder())))?;
        if id.ghid() != frame.binder() {
            return Err(Error::WrongIdentity);
        }
        frame.verify(&id)?;
        let geoc = Geoc::parse(&need!(self.need(&frame.target())))?;
        if geoc.author() != id.ghid() {
            return Err(Error::WrongIdentity);
        }
        geoc.verify(&id)?;
        let pk = keys::password_keys(password, &id.ghid(), self.cfg.kdf)?;
        let secret = frame_secret(
            &pk.root_master,
            &id.ghid(),
            frame.targets().get(1),
            Some(&user_id),
        )?;
        let plain = Zeroizing::new(
            geoc.decrypt(&secret.into_secret())
                .map_err(|_| Error::WrongPassword)?,
        );
        let root = RootContent::parse(&plain)?;
        let me = FirstParty::import(&root.identity_export, &pk.wrap_key)
            .map_err(|_| Error::WrongPassword)?;
        if me.ghid() != id.ghid() {
            return Err(Error::WrongIdentity);
        }
        let mut agent = Agent::new(me, user_id, root.account);
        let entry = |address, secret| Entry::internal(address, id.ghid(), secret);
        agent.objects.insert(
            user_id,
            ObjRecord {
                kind: Kind::Root,
                entry: entry(user_id, pk.root_master),
                state: plain.to_vec(),
                changed_ms: 0,
                dirty: false,
                container: Some(frame.target()),
                current: Some(frame),
                unsent: None,
                rotating: None,
                rotating_withheld: Vec::new(),
                rekey_only: false,
                held: None,
                loaded: true,
            },
        );
        agent.objects.insert(
            root.account,
            ObjRecord::unloaded(Kind::Account, entry(root.account, root.account_secret)),
        );
        let identity = agent.me.ghid();
        self.agent = Some(agent);
        self.mark(state::K_ACCOUNT.to_vec());
        self.mark(state::key(state::P_CONTACT, &identity.to_bytes()));
        self.mark_object(&user_id);
        self.mark_object(&root.account);
        self.out.push(Action::Ready { user_id, identity });
        if self.online {
            self.on_server_up();
        }
        Ok(Progress::Done)
    }
}
