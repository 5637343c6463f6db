//! Start-up initialisation of the user and the working directory (`docs/spec/plugins.md` §2).
//!
//! Runs before the port is bound. As root it may create the agent user; unprivileged it never
//! fails for want of privileges — files then simply belong to the server's user.

use std::process::Command;

use crate::config::Config;

/// Why initialisation failed; start-up aborts with this message.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Creating the working directory failed.
    #[error("cannot create the working directory {path}: {source}")]
    WorkingDir {
        /// The directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Appending to /etc/sudoers failed (reference text).
    #[error("Failed to add sudoer: {0}")]
    Sudoer(#[source] std::io::Error),
    /// `useradd` failed (reference text).
    #[error("Failed to create user `{user}` with UID {uid}. Output: [{output}]")]
    UserAdd {
        /// User name.
        user: String,
        /// Requested UID.
        uid: u32,
        /// useradd's stderr.
        output: String,
    },
}

/// Creates the working directory and, as root, the agent user; returns the UID to use for
/// ownership of written files (the user's existing UID wins over `--user-id`).
pub fn init_user_and_working_dir(cfg: &Config) -> Result<u32, InitError> {
    let dir = &cfg.working_dir;
    std::fs::create_dir_all(dir).map_err(|source| InitError::WorkingDir {
        path: dir.display().to_string(),
        source,
    })?;
    if !cfg.is_root {
        if cfg.username != current_user_name() {
            tracing::warn!(
                user = %cfg.username,
                "not running as root: cannot switch to --username, children run as the current user"
            );
        }
        return Ok(nix::unistd::geteuid().as_raw());
    }
    let mut uid = cfg.user_id;
    if cfg.username != "root" {
        match nix::unistd::User::from_name(&cfg.username).ok().flatten() {
            Some(u) if u.uid.as_raw() != uid => {
                tracing::warn!(
                    user = %cfg.username,
                    existing = u.uid.as_raw(),
                    requested = uid,
                    "user exists with another UID; using the existing one"
                );
                uid = u.uid.as_raw();
            }
            Some(_) => {}
            None => create_user(&cfg.username, uid)?,
        }
    }
    // The reference chowns the tree to USER:root and makes it group-writable; failures are
    // ignored there too (e.g. read-only bind mounts inside the workspace).
    let owner = format!("{}:root", cfg.username);
    let _ = Command::new("chown")
        .arg("-R")
        .arg(&owner)
        .arg(dir)
        .status();
    let _ = Command::new("chmod").arg("g+rw").arg(dir).status();
    Ok(uid)
}

fn create_user(name: &str, uid: u32) -> Result<(), InitError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open("/etc/sudoers")
        .and_then(|mut f| f.write_all(b"%sudo ALL=(ALL) NOPASSWD:ALL\n"))
        .map_err(InitError::Sudoer)?;
    let home = format!("/home/{name}");
    let uid_s = uid.to_string();
    let out = Command::new("useradd")
        .args([
            "-rm",
            "-d",
            &home,
            "-s",
            "/bin/bash",
            "-g",
            "root",
            "-G",
            "sudo",
        ])
        .args(["-u", &uid_s, name])
        .output()
        .map_err(|e| InitError::UserAdd {
            user: name.into(),
            uid,
            output: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(InitError::UserAdd {
            user: name.into(),
            uid,
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

fn current_user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default()
}
