//! `/alive` and `/server_info` (`docs/spec/plugins.md` §6). CPU use is measured over the time since
//! the previous call instead of the reference's 100 ms sleep on the event loop
//! (`docs/spec/protocol.md` §9, quirk Q9).

use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::runtime::Runtime;

/// `GET /alive`: the port is bound only after initialisation, so the answer is always ok.
pub async fn alive() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /server_info`.
pub async fn server_info(State(rt): State<Arc<Runtime>>) -> Json<Value> {
    let resources = tokio::task::spawn_blocking(system_stats)
        .await
        .unwrap_or_else(|_| json!({}));
    Json(json!({
        "uptime": rt.started.elapsed().as_secs_f64(),
        "idle_time": rt.idle_secs(),
        "resources": resources,
    }))
}

/// The sampler persists between calls so CPU use covers the interval since the last call.
fn sampler() -> &'static Mutex<System> {
    static SYS: OnceLock<Mutex<System>> = OnceLock::new();
    SYS.get_or_init(|| Mutex::new(System::new()))
}

fn system_stats() -> Value {
    let pid = Pid::from_u32(std::process::id());
    let mut sys = sampler().lock().unwrap_or_else(|e| e.into_inner());
    sys.refresh_memory();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .with_disk_usage(),
    );
    let total_mem = sys.total_memory().max(1);
    let (cpu, rss, vms, read_b, write_b) = match sys.process(pid) {
        Some(p) => {
            let d = p.disk_usage();
            (
                p.cpu_usage() as f64,
                p.memory(),
                p.virtual_memory(),
                d.total_read_bytes,
                d.total_written_bytes,
            )
        }
        None => (0.0, 0, 0, 0, 0),
    };
    // psutil's disk_usage: `used` excludes blocks reserved for root, `free` is what an
    // unprivileged user may still use.
    let (total, used, free) = match nix::sys::statvfs::statvfs("/") {
        Ok(v) => {
            let f = v.fragment_size();
            let blocks = v.blocks();
            (
                blocks * f,
                blocks.saturating_sub(v.blocks_free()) * f,
                v.blocks_available() * f,
            )
        }
        Err(_) => (0, 0, 0),
    };
    let disk_percent = if used + free == 0 {
        0.0
    } else {
        (used as f64 / (used + free) as f64 * 1000.0).round() / 10.0
    };
    json!({
        "cpu_percent": cpu,
        "memory": {"rss": rss, "vms": vms, "percent": rss as f64 / total_mem as f64 * 100.0},
        "disk": {"total": total, "used": used, "free": free, "percent": disk_percent},
        "io": {"read_bytes": read_b, "write_bytes": write_b},
    })
}
