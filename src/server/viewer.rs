//! The latest client's file viewer (`docs/spec/compat-latest.md` §4, endpoint E2): a second,
//! unauthenticated HTTP server on `127.0.0.1`, at the first free port after the main one, whose
//! URL is written to `/tmp/oh-server-url`. The agent's browser reads that file and opens
//! `<url>/view?path=<absolute path>` to look at a PDF, an image or a text file.
//!
//! It only ever answers clients on the loopback interface, and only for files the server's
//! user can read; files are embedded in the page as data URLs, so the page needs no network
//! (the reference loads pdf.js from a CDN, which a closed sandbox cannot reach).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::extract::{ConnectInfo, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;

/// Where the viewer's URL is published (the reference's fixed location).
pub const URL_FILE: &str = "/tmp/oh-server-url";
/// Files embedded at most (they travel base64-encoded inside one page).
const MAX_FILE: u64 = 64 << 20;
/// How many ports after the main one are tried.
const PORT_RANGE: u16 = 1024;

/// Binds the first free port in `main_port + 1 ..= main_port + 1024` on 127.0.0.1 except
/// `reserved`, serves the viewer there until the process ends, and writes its URL to
/// `url_file`. Returns the URL.
///
/// `reserved` holds ports others are about to bind: `VSCODE_PORT`, whose server starts in
/// the background and binds it only a second or so later. (The reference takes the first
/// free port; VS Code then cannot start when its port is the next one.)
pub async fn start(main_port: u16, reserved: &[u16], url_file: &Path) -> std::io::Result<String> {
    let mut listener = None;
    for offset in 1..=PORT_RANGE {
        let Some(port) = main_port.checked_add(offset) else {
            break;
        };
        if reserved.contains(&port) {
            continue;
        }
        if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            listener = Some(l);
            break;
        }
    }
    let listener = listener.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free port for the file viewer",
        )
    })?;
    let url = format!("http://localhost:{}", listener.local_addr()?.port());
    let app = router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "file viewer stopped");
        }
    });
    let (file, text) = (url_file.to_path_buf(), url.clone());
    tokio::task::spawn_blocking(move || std::fs::write(file, text))
        .await
        .map_err(std::io::Error::other)??;
    Ok(url)
}

/// The viewer's routes.
pub fn router() -> Router {
    Router::new()
        .route("/", get(status))
        .route("/view", get(view))
}

async fn status() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "File viewer server is running"}))
}

/// `?path=`.
#[derive(Deserialize)]
struct ViewQuery {
    path: Option<String>,
}

async fn view(ConnectInfo(peer): ConnectInfo<SocketAddr>, Query(q): Query<ViewQuery>) -> Response {
    if !peer.ip().is_loopback() {
        return page(
            StatusCode::FORBIDDEN,
            "Access denied",
            "<p>The file viewer only answers requests from this machine.</p>",
        );
    }
    let Some(path) = q.path.filter(|p| !p.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "<p>Missing <code>path</code>.</p>",
        );
    };
    if !path.starts_with('/') {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            &format!("<p>Path must be absolute: {}</p>", escape(&path)),
        );
    }
    let p = PathBuf::from(&path);
    match tokio::task::spawn_blocking(move || render(&p)).await {
        Ok(r) => r,
        Err(e) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            &format!("<p>{}</p>", escape(&e.to_string())),
        ),
    }
}

/// The page for one file (blocking: reads it). Its title is the latest server's,
/// `File Viewer - <basename>`, and an image's alt text is its basename, so the agent's
/// accessibility tree reads `RootWebArea 'File Viewer - x.png'` / `img 'x.png'` as with the
/// reference (the viewer's pages, `docs/spec/compat-latest-texts.md` §2 row S20; its title,
/// `docs/spec/compat-latest-texts.md` §4 row W10).
fn render(path: &Path) -> Response {
    let shown = escape(&path.display().to_string());
    let name = escape(&path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    ));
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => {
            return page(
                StatusCode::NOT_FOUND,
                "File not found",
                &format!("<p>File not found: {shown}</p>"),
            )
        }
    };
    if meta.is_dir() {
        return page(
            StatusCode::BAD_REQUEST,
            "Not a file",
            &format!("<p>Path is a directory: {shown}</p>"),
        );
    }
    if meta.len() > MAX_FILE {
        return page(
            StatusCode::BAD_REQUEST,
            "File too large",
            &format!(
                "<p>File is too large to view ({} bytes; at most {MAX_FILE}): {shown}</p>",
                meta.len()
            ),
        );
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return page(
                StatusCode::FORBIDDEN,
                "Cannot read file",
                &format!("<p>Cannot read {shown}: {}</p>", escape(&e.to_string())),
            )
        }
    };
    let mime = mime_guess::from_path(path).first_raw().unwrap_or("");
    let b64 = || base64::engine::general_purpose::STANDARD.encode(&bytes);
    let body = if mime.starts_with("image/") {
        format!(
            r#"<img src="data:{mime};base64,{}" alt="{name}" style="max-width:100%">"#,
            b64()
        )
    } else if mime == "application/pdf" {
        format!(
            r#"<embed src="data:application/pdf;base64,{}" type="application/pdf" style="width:100%;height:95vh">"#,
            b64()
        )
    } else if let Ok(text) = std::str::from_utf8(&bytes) {
        format!("<pre>{}</pre>", escape(text))
    } else {
        return page(
            StatusCode::BAD_REQUEST,
            "Unsupported file type",
            &format!("<p>This file type cannot be shown: {shown}</p>"),
        );
    };
    page(StatusCode::OK, &format!("File Viewer - {name}"), &body)
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<h3>{title}</h3>\n{body}\n</body></html>\n"
    );
    (status, Html(html)).into_response()
}

/// HTML-escapes text for element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_status_files_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("oh-server-url");
        // A port with nothing above it taken is unlikely to be in use; any free one will do.
        let url = start(
            20_000 + (std::process::id() % 20_000) as u16,
            &[],
            &url_file,
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read_to_string(&url_file).unwrap(), url);
        let http = reqwest::Client::new();
        let get = |q: String| {
            let http = http.clone();
            let url = url.clone();
            async move {
                let r = http.get(format!("{url}{q}")).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let (s, body) = get("/".into()).await;
        assert_eq!(
            (s, body.as_str()),
            (200, r#"{"status":"File viewer server is running"}"#)
        );
        std::fs::write(dir.path().join("a.txt"), "x < y & z").unwrap();
        std::fs::write(dir.path().join("p.png"), b"\x89PNG\r\n\x1a\n").unwrap();
        let d = dir.path().display();
        let (s, body) = get(format!("/view?path={d}/a.txt")).await;
        assert_eq!(s, 200);
        assert!(body.contains("<pre>x &lt; y &amp; z</pre>"), "{body}");
        let (s, body) = get(format!("/view?path={d}/p.png")).await;
        assert_eq!(s, 200);
        assert!(
            body.contains("<title>File Viewer - p.png</title>"),
            "{body}"
        );
        assert!(body.contains(r#"alt="p.png""#), "{body}");
        assert!(
            body.contains("data:image/png;base64,iVBORw0KGgo="),
            "{body}"
        );
        assert_eq!(get("/view?path=rel/a.txt".into()).await.0, 400);
        assert_eq!(get(format!("/view?path={d}/missing")).await.0, 404);
        assert_eq!(get(format!("/view?path={d}")).await.0, 400);
        assert_eq!(get("/view".into()).await.0, 400);
    }

    #[tokio::test]
    async fn skips_reserved_ports() {
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("oh-server-url");
        // A port free a moment ago, as the next one after a main port.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = start(free - 1, &[free], &url_file).await.unwrap();
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        assert!(port > free, "{url}: after the reserved {free}");
    }
}
