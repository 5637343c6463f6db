//! Who a child runs as: the one rule, used by the shell, the kernel, the VS Code server and
//! the agent-sandbox API's processes alike.
//!
//! The agent user is named on the command line (`--username`). A root server switches to it
//! (uid, primary gid and the supplementary groups a login would get). A server that is not
//! root cannot switch: its children run as itself, whatever name was given, with its own
//! account's home and shell — the way the reference behaves when started unprivileged.

use std::ffi::CString;
use std::path::PathBuf;

use nix::unistd::{Gid, Uid, User};

use crate::Credentials;

/// An account from the user database, and whether children must switch to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// User name.
    pub name: String,
    /// Numeric user id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from the group database; the primary group among them).
    pub groups: Vec<u32>,
    /// Home directory.
    pub home: PathBuf,
    /// Login shell.
    pub shell: PathBuf,
    /// Whether children must switch to this account (it is not the server's own).
    pub switch: bool,
}

impl Account {
    /// The credentials to switch to, when a switch is needed.
    pub fn credentials(&self) -> Option<Credentials> {
        self.switch.then(|| Credentials {
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.clone(),
        })
    }
}

/// Why the agent user could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The user database could not be read.
    #[error("cannot look up user {name}: {source}")]
    Lookup {
        /// The name asked for.
        name: String,
        /// What the lookup said.
        #[source]
        source: nix::Error,
    },
    /// No such user.
    #[error("user {0} does not exist")]
    Missing(String),
    /// A name no user can have.
    #[error("bad user name {0:?}")]
    BadName(String),
    /// The groups of a user to switch to could not be read.
    #[error("cannot read the groups of {name}: {source}")]
    Groups {
        /// The user.
        name: String,
        /// What the lookup said.
        #[source]
        source: nix::Error,
    },
}

/// Resolves the account children run as (see the module doc). `None` for the name means the
/// server's own user; `Ok(None)` when the server's own uid has no entry in the database (a
/// container started with an arbitrary `--user`): children then run as the server, with
/// its environment.
pub fn resolve(name: Option<&str>) -> Result<Option<Account>, UserError> {
    let me = nix::unistd::geteuid();
    let user = match name {
        Some(name) if me.is_root() => User::from_name(name)
            .map_err(|source| UserError::Lookup {
                name: name.to_string(),
                source,
            })?
            .ok_or_else(|| UserError::Missing(name.to_string()))?,
        _ => match own(me)? {
            Some(u) => u,
            None => return Ok(None),
        },
    };
    let switch = user.uid != me;
    let groups = if switch {
        let cname =
            CString::new(user.name.clone()).map_err(|_| UserError::BadName(user.name.clone()))?;
        nix::unistd::getgrouplist(&cname, user.gid)
            .map_err(|source| UserError::Groups {
                name: user.name.clone(),
                source,
            })?
            .into_iter()
            .map(Gid::as_raw)
            .collect()
    } else {
        vec![user.gid.as_raw()]
    };
    Ok(Some(Account {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups,
        home: user.dir,
        shell: user.shell,
        switch,
    }))
}

fn own(me: Uid) -> Result<Option<User>, UserError> {
    User::from_uid(me).map_err(|source| UserError::Lookup {
        name: format!("uid {me}"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_own_user_needs_no_switch() {
        let me = nix::unistd::geteuid().as_raw();
        let a = resolve(None).unwrap().expect("an entry for the test's uid");
        assert_eq!(a.uid, me);
        assert!(!a.switch);
        assert_eq!(a.credentials(), None);
        let again = resolve(Some(&a.name)).unwrap().unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn root_switches_to_another_user_with_its_groups() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let a = resolve(Some("nobody")).unwrap().unwrap();
        assert!(a.switch);
        assert_ne!(a.uid, 0);
        assert!(a.groups.contains(&a.gid), "{a:?}");
        assert_eq!(a.credentials().unwrap().uid, a.uid);
        assert!(matches!(
            resolve(Some("no-such-user-sbx")),
            Err(UserError::Missing(_))
        ));
    }
}
