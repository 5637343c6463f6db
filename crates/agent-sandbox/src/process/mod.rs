//! The gRPC `process.v1.ProcessService`: validation and the mapping to statuses here;
//! forking in [`spawn`], the registry in [`table`], running and streaming in [`run`] and
//! [`output`], terminals in [`pty`].

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status};

use crate::wire::process::process_service_server::ProcessService;
use crate::wire::process::write_stdin_request::Payload;
use crate::wire::process::{
    ExecuteRequest, ExecuteResponse, ProcessConfig, ResizeTtyRequest, ResizeTtyResponse,
    SendSignalRequest, SendSignalResponse, Signal, StartRequest, WriteStdinRequest,
    WriteStdinResponse,
};
use crate::Shared;

mod error;
pub(crate) mod output;
pub(crate) mod pty;
pub(crate) mod run;
pub(crate) mod spawn;
pub(crate) mod table;

pub use error::ProcessError;
pub use spawn::Identity;

/// The service; cheap to clone (one shared state).
#[derive(Clone)]
pub struct ProcessApi {
    pub(crate) shared: Arc<Shared>,
}

/// A request's process, checked: what [`spawn::spawn`] needs.
struct Checked {
    argv: Vec<String>,
    env: std::collections::HashMap<String, String>,
    cwd: PathBuf,
}

impl ProcessApi {
    fn check(&self, config: Option<ProcessConfig>) -> Result<Checked, ProcessError> {
        let config = config.unwrap_or_default();
        if config.command.is_empty() {
            return Err(ProcessError::Invalid("command is required".into()));
        }
        if config.command[0].is_empty() {
            return Err(ProcessError::Invalid(
                "command[0] (the program) is empty".into(),
            ));
        }
        if config.command.iter().any(|a| a.contains('\0')) {
            return Err(ProcessError::Invalid(
                "command arguments may not contain NUL bytes".into(),
            ));
        }
        for (k, v) in &config.env_vars {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(ProcessError::Invalid(format!(
                    "invalid environment variable {k:?}: names must be non-empty without '=' \
                     and neither may contain NUL"
                )));
            }
        }
        let root = &self.shared.root;
        let cwd = match config.cwd.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => root.confine(OsStr::new(c)).map_err(ProcessError::Cwd)?,
            None => root.path().to_path_buf(),
        };
        if !cwd.is_dir() {
            return Err(ProcessError::CwdMissing(config.cwd.unwrap_or_default()));
        }
        Ok(Checked {
            argv: config.command,
            env: config.env_vars,
            cwd,
        })
    }

    fn spawn(
        &self,
        c: &Checked,
        pty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<spawn::Spawned, ProcessError> {
        spawn::spawn(&spawn::Spec {
            argv: &c.argv,
            env: &c.env,
            cwd: &c.cwd,
            who: &self.shared.options.identity,
            pty,
            stdin,
        })
        .map_err(|source| ProcessError::Spawn {
            command: c.argv[0].clone(),
            source,
        })
    }

    fn entry(&self, id: i32) -> Result<Arc<table::Entry>, ProcessError> {
        self.shared.table.get(id).ok_or(ProcessError::NotFound(id))
    }
}

#[tonic::async_trait]
impl ProcessService for ProcessApi {
    type StartStream = run::StartStream;

    async fn start(
        &self,
        request: Request<StartRequest>,
    ) -> Result<Response<Self::StartStream>, Status> {
        let req = request.into_inner();
        let checked = self.check(req.config)?;
        let size = match req.pty {
            Some(p) => Some(terminal_size(p.cols, p.rows)?),
            None => None,
        };
        let permit = self.shared.table.admit()?;
        let spawned = self.spawn(&checked, size, true)?;
        Ok(Response::new(run::start(
            &self.shared.table,
            permit,
            spawned,
        )))
    }

    async fn execute(
        &self,
        request: Request<ExecuteRequest>,
    ) -> Result<Response<ExecuteResponse>, Status> {
        let deadline = grpc_timeout(request.metadata());
        let checked = self.check(request.into_inner().config)?;
        let permit = self.shared.table.admit()?;
        let spawned = self.spawn(&checked, None, false)?;
        let limit = self.shared.options.execute_output_limit;
        run::execute(&self.shared.table, permit, spawned, limit, deadline)
            .await
            .map(Response::new)
    }

    async fn write_stdin(
        &self,
        request: Request<WriteStdinRequest>,
    ) -> Result<Response<WriteStdinResponse>, Status> {
        let req = request.into_inner();
        let entry = self.entry(req.process_id)?;
        let id = entry.id;
        let mut stdin = entry.stdin.lock().await;
        let closed = ProcessError::Precondition {
            id,
            why: if entry.exited.load(Ordering::SeqCst) {
                "the process has exited"
            } else {
                "stdin was closed (EOF already sent)"
            },
        };
        match req.payload {
            // EOF twice is still EOF.
            Some(Payload::Eof(())) => {
                let old = std::mem::replace(&mut *stdin, table::Stdin::Closed);
                if let table::Stdin::Pty(mut m) = old {
                    // A terminal has no half-close: EOF is its VEOF character.
                    let eof = m.eof_char();
                    m.write_all(&[eof])
                        .await
                        .map_err(|source| ProcessError::Io {
                            what: "writing EOF to the terminal",
                            source,
                        })?;
                }
            }
            Some(Payload::Input(data)) if !data.is_empty() => {
                let written = match &mut *stdin {
                    table::Stdin::Pipe(p) => p.write_all(&data).await,
                    table::Stdin::Pty(m) => m.write_all(&data).await,
                    table::Stdin::Closed => return Err(closed.into()),
                };
                match written {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        return Err(ProcessError::Precondition {
                            id,
                            why: "the process no longer reads its stdin",
                        }
                        .into())
                    }
                    Err(source) => {
                        return Err(ProcessError::Io {
                            what: "writing stdin",
                            source,
                        }
                        .into())
                    }
                }
            }
            // No payload or empty input: nothing to deliver.
            _ => {}
        }
        Ok(Response::new(WriteStdinResponse {}))
    }

    async fn send_signal(
        &self,
        request: Request<SendSignalRequest>,
    ) -> Result<Response<SendSignalResponse>, Status> {
        let req = request.into_inner();
        let entry = self.entry(req.process_id)?;
        let sig = match Signal::try_from(req.signal) {
            Ok(Signal::Sigint) => libc::SIGINT,
            Ok(Signal::Sigterm) => libc::SIGTERM,
            Ok(Signal::Sigkill) => libc::SIGKILL,
            Ok(Signal::Unspecified) | Err(_) => {
                return Err(ProcessError::Invalid(format!(
                    "unsupported or unspecified signal {}: use SIGNAL_SIGINT, SIGNAL_SIGTERM \
                     or SIGNAL_SIGKILL",
                    req.signal
                ))
                .into())
            }
        };
        // A process that already exited (its stream not yet ended) has nothing to signal.
        if !entry.exited.load(Ordering::SeqCst) {
            spawn::signal_group(entry.pgid, sig).map_err(|source| ProcessError::Io {
                what: "sending the signal",
                source,
            })?;
        }
        Ok(Response::new(SendSignalResponse {}))
    }

    async fn resize_tty(
        &self,
        request: Request<ResizeTtyRequest>,
    ) -> Result<Response<ResizeTtyResponse>, Status> {
        let req = request.into_inner();
        let entry = self.entry(req.process_id)?;
        let Some(master) = &entry.pty else {
            return Err(ProcessError::Precondition {
                id: entry.id,
                why: "it has no pty (start it with `pty` to resize)",
            }
            .into());
        };
        if entry.exited.load(Ordering::SeqCst) {
            return Err(ProcessError::Precondition {
                id: entry.id,
                why: "the process has exited",
            }
            .into());
        }
        let (cols, rows) = dimensions(req.cols, req.rows)?;
        master
            .resize(cols, rows)
            .map_err(|source| ProcessError::Io {
                what: "resizing the terminal",
                source,
            })?;
        Ok(Response::new(ResizeTtyResponse {}))
    }
}

/// A terminal size from the request; a zero dimension takes the default (80×24).
fn terminal_size(cols: u32, rows: u32) -> Result<(u16, u16), ProcessError> {
    let (c, r) = dimensions(cols, rows)?;
    Ok(if c == 0 || r == 0 {
        pty::DEFAULT_SIZE
    } else {
        (c, r)
    })
}

fn dimensions(cols: u32, rows: u32) -> Result<(u16, u16), ProcessError> {
    match (u16::try_from(cols), u16::try_from(rows)) {
        (Ok(c), Ok(r)) => Ok((c, r)),
        _ => Err(ProcessError::Invalid(format!(
            "terminal size {cols}x{rows} is out of range (at most 65535 each)"
        ))),
    }
}

/// The client's deadline, from the `grpc-timeout` header (`<digits><unit>`, unit one of
/// `H M S m u n`; gRPC over HTTP/2, "Requests").
fn grpc_timeout(meta: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let v = meta.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        let mut m = tonic::metadata::MetadataMap::new();
        m.insert("grpc-timeout", "1500m".parse().unwrap());
        assert_eq!(grpc_timeout(&m), Some(Duration::from_millis(1500)));
        m.insert("grpc-timeout", "2S".parse().unwrap());
        assert_eq!(grpc_timeout(&m), Some(Duration::from_secs(2)));
        m.insert("grpc-timeout", "x".parse().unwrap());
        assert_eq!(grpc_timeout(&m), None);
    }

    #[test]
    fn terminal_sizes() {
        assert_eq!(terminal_size(0, 0).unwrap(), pty::DEFAULT_SIZE);
        assert_eq!(terminal_size(120, 40).unwrap(), (120, 40));
        assert!(terminal_size(70000, 1).is_err());
    }
}
