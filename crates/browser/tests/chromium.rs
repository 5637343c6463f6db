//! End-to-end tests on a real headless Chromium against pages served on 127.0.0.1.
//!
//! They need Chromium on PATH (`.ci/run` installs Debian's `chromium`); set
//! `SANDBOXD_BROWSER_PATH` to use another executable.

use std::collections::HashMap;
use std::sync::Arc;

use sandboxd_browser::{BrowserConfig, BrowserObservation, BrowserService};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const INDEX: &str = r#"<!DOCTYPE html>
<html><head><title>Test Page</title></head>
<body>
<h1>Main Heading</h1>
<a href="/second.html">Second page</a>
<input type="text" aria-label="Your name">
<button onclick="document.getElementById('out').textContent = 'Hello ' + document.querySelector('input').value">Greet</button>
<div id="out">nothing</div>
<div id="dbl" role="button" aria-label="dbl target" ondblclick="this.textContent = 'double clicked'" style="width:200px;height:40px">dbl target</div>
<select aria-label="Color"><option value="r">Red</option><option value="g">Green</option></select>
<iframe src="/frame.html" width="400" height="200"></iframe>
<button onclick="window.open('/second.html')">Open tab</button>
<button onclick="alert('hi'); document.getElementById('out').textContent = 'after alert'">Alert</button>
</body></html>"#;

const FRAME: &str = r#"<!DOCTYPE html><html><body>
<p>Inside the frame</p><button onclick="this.textContent = 'frame clicked'">Frame button</button>
</body></html>"#;

const SECOND: &str = r#"<!DOCTYPE html><html><head><title>Second</title></head>
<body><p>This is the second page.</p></body></html>"#;

/// A tiny HTTP/1.0 server for the test pages.
async fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pages: Arc<HashMap<&str, &str>> = Arc::new(HashMap::from([
        ("/", INDEX),
        ("/frame.html", FRAME),
        ("/second.html", SECOND),
    ]));
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let pages = pages.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let resp = match pages.get(path.as_str()) {
                    Some(body) => format!(
                        "HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    ),
                    None => "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
                };
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

fn service() -> BrowserService {
    BrowserService::new(BrowserConfig {
        executable: std::env::var_os("SANDBOXD_BROWSER_PATH").map(Into::into),
        ..Default::default()
    })
}

fn find_bid(obs: &BrowserObservation, role: &str, name: &str) -> String {
    obs.axtree_object["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"]["value"] == role && n["name"]["value"] == name)
        .and_then(|n| n["browsergym_id"].as_str())
        .unwrap_or_else(|| panic!("no {role} {name:?} with a bid"))
        .to_string()
}

fn ok(obs: &BrowserObservation) {
    assert!(!obs.error, "{}", obs.last_browser_action_error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsing_end_to_end() {
    let site = serve().await;
    let svc = service();
    assert_eq!(
        svc.browser_pid().await,
        None,
        "nothing runs before the first browse"
    );

    // browse: observation shape.
    let obs = svc.browse_url(&format!("{site}/")).await;
    ok(&obs);
    assert_eq!(obs.url, format!("{site}/"));
    assert_eq!(obs.last_browser_action, format!("goto(\"{site}/\")"));
    assert_eq!(obs.open_pages_urls, vec![format!("{site}/")]);
    assert_eq!(obs.active_page_index, 0);
    assert!(obs.content.contains("# Main Heading"), "{}", obs.content);
    assert!(
        obs.content.contains("[Second page](/second.html)"),
        "{}",
        obs.content
    );
    assert!(
        obs.content.contains("Inside the frame"),
        "frame text inlined: {}",
        obs.content
    );
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(&obs.screenshot)
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(obs.dom_object["documents"].as_array().unwrap().len() >= 2);
    assert!(obs.dom_object["strings"].is_array());
    let pid = svc
        .browser_pid()
        .await
        .expect("browser runs after a browse");

    // bids: decimal in the main document, letter prefix inside the frame, stable.
    let heading = find_bid(&obs, "heading", "Main Heading");
    assert!(heading.chars().all(|c| c.is_ascii_digit()), "{heading}");
    let frame_button = find_bid(&obs, "button", "Frame button");
    assert!(
        frame_button.starts_with('a') && frame_button[1..].chars().all(|c| c.is_ascii_digit()),
        "{frame_button}"
    );
    let iframe = obs.axtree_object["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"]["value"] == "Iframe")
        .expect("iframe node");
    assert_eq!(iframe["browsergym_id"], "a");
    assert!(
        !iframe["childIds"].as_array().unwrap().is_empty(),
        "iframe linked to its frame root"
    );
    let props = &obs.extra_element_properties[&heading];
    assert_eq!(props["visibility"], 1.0);
    assert_eq!(props["bbox"].as_array().unwrap().len(), 4);
    assert!(props["clickable"].is_boolean() && props["set_of_marks"].is_boolean());
    let obs2 = svc.browse_interactive("noop(0)").await;
    ok(&obs2);
    assert_eq!(
        find_bid(&obs2, "heading", "Main Heading"),
        heading,
        "bids stable"
    );

    // fill + click updates the page.
    let textbox = find_bid(&obs2, "textbox", "Your name");
    let greet = find_bid(&obs2, "button", "Greet");
    let obs = svc
        .browse_interactive(&format!("fill('{textbox}', 'Rust')\nclick('{greet}')"))
        .await;
    ok(&obs);
    assert!(obs.content.contains("Hello Rust"), "{}", obs.content);

    // A real double click.
    let dbl = find_bid(&obs, "button", "dbl target");
    let obs = svc.browse_interactive(&format!("dblclick('{dbl}')")).await;
    ok(&obs);
    assert!(
        obs.axtree_object.to_string().contains("double clicked"),
        "{}",
        obs.content
    );

    // A click inside the iframe.
    let obs = svc
        .browse_interactive(&format!("click('{frame_button}')"))
        .await;
    ok(&obs);
    assert!(obs.content.contains("frame clicked"), "{}", obs.content);

    // select_option by label.
    let select = find_bid(&obs, "combobox", "Color");
    let obs = svc
        .browse_interactive(&format!("select_option('{select}', 'Green')"))
        .await;
    ok(&obs);

    // An alert is dismissed and the page goes on.
    let alert = find_bid(&obs, "button", "Alert");
    let obs = svc.browse_interactive(&format!("click('{alert}')")).await;
    ok(&obs);
    assert!(obs.content.contains("after alert"), "{}", obs.content);

    // Errors: unknown bid, empty action, unknown function; the next action still works.
    let obs = svc.browse_interactive("click('999999')").await;
    assert!(obs.error);
    assert_eq!(
        obs.last_browser_action_error,
        "ValueError: Could not find element with bid \"999999\""
    );
    let obs = svc.browse_interactive("nothing to do").await;
    assert_eq!(
        obs.last_browser_action_error,
        "ValueError: Received an empty action."
    );
    let obs = svc.browse_interactive("mouse_click(1, 2)").await;
    assert_eq!(
        obs.last_browser_action_error,
        "NameError: Invalid action type 'mouse_click'."
    );
    assert!(!obs.failed, "action errors still carry the page");
    assert!(obs.content.contains("Main Heading"));

    // Unreachable host: an error observation, not a failure of the server.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let obs = svc.browse_url(&format!("http://127.0.0.1:{closed}/")).await;
    assert!(obs.error);
    assert!(
        obs.last_browser_action_error.starts_with(&format!(
            "Error: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:{closed}/"
        )),
        "{}",
        obs.last_browser_action_error
    );

    // A link click navigates; the observation shows the new page.
    let obs = svc.browse_url(&format!("{site}/")).await;
    let link = find_bid(&obs, "link", "Second page");
    let obs = svc.browse_interactive(&format!("click('{link}')")).await;
    ok(&obs);
    assert_eq!(obs.url, format!("{site}/second.html"));
    assert!(
        obs.content.contains("This is the second page."),
        "{}",
        obs.content
    );
    let obs = svc.browse_interactive("go_back()").await;
    ok(&obs);
    assert_eq!(obs.url, format!("{site}/"));

    // A popup becomes the active tab; tab_focus / tab_close move between tabs.
    let open = find_bid(&obs, "button", "Open tab");
    let obs = svc.browse_interactive(&format!("click('{open}')")).await;
    ok(&obs);
    assert_eq!(obs.open_pages_urls.len(), 2, "{:?}", obs.open_pages_urls);
    assert_eq!(obs.active_page_index, 1);
    assert!(obs.content.contains("second page"), "{}", obs.content);
    let obs = svc.browse_interactive("tab_focus(0)").await;
    ok(&obs);
    assert_eq!(obs.active_page_index, 0);
    let obs = svc.browse_interactive("tab_focus(5)").await;
    assert_eq!(
        obs.last_browser_action_error,
        "IndexError: list index out of range"
    );
    let obs = svc.browse_interactive("tab_close()").await;
    ok(&obs);
    assert_eq!(obs.open_pages_urls, vec![format!("{site}/second.html")]);

    // A browser killed from outside is replaced on the next action, which says so.
    // SAFETY: kill(2) of the browser process this test started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let obs = svc.browse_url(&format!("{site}/second.html")).await;
    let note = "[The browser was restarted because the previous browser process ended (killed by SIGKILL): its open tabs, history, cookies and page state were lost.]";
    assert!(obs.content.starts_with(note), "{}", obs.content);
    assert!(obs.content.contains("second page"), "{}", obs.content);
    assert_eq!(obs.last_browser_action_error, note);
    assert!(!obs.failed);
    let new_pid = svc.browser_pid().await.unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(svc.restarts(), 1);
    // Only that step says so.
    ok(&svc.browse_url(&format!("{site}/second.html")).await);

    // Shutdown kills the whole tree and removes the profile.
    svc.shutdown().await;
    assert_eq!(svc.browser_pid().await, None);
    assert!(
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(new_pid, 0) } != 0,
        "browser process gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_timeout_gives_the_exception_form_and_recovers() {
    let site = serve().await;
    let svc = BrowserService::new(BrowserConfig {
        executable: std::env::var_os("SANDBOXD_BROWSER_PATH").map(Into::into),
        step_timeout: std::time::Duration::from_secs(3),
    });
    let obs = svc.browse_interactive("noop(10000)").await;
    assert!(obs.failed && obs.error);
    assert_eq!(obs.content, sandboxd_browser::TIMEOUT_MESSAGE);
    assert_eq!(obs.active_page_index, -1);
    assert_eq!(obs.dom_object, Value::Object(Default::default()));
    let obs = svc.browse_url(&format!("{site}/")).await;
    ok(&obs);
    svc.shutdown().await;
}

/// A page that answers only after `secs` seconds (a browse that is still going on).
async fn slow_site(secs: u64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                if req.contains("/slow") {
                    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
                }
                let body = "<html><body><p>slow page</p></body></html>";
                let _ = sock
                    .write_all(
                        format!("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                            .as_bytes(),
                    )
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// Chromium killed in the middle of a browse: the step notices at once (the process's exit),
/// runs again on a new browser and says the old one's state was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_killed_mid_browse_is_noticed_restarted_and_reported() {
    let site = slow_site(3).await;
    let svc = Arc::new(service());
    ok(&svc.browse_url(&format!("{site}/")).await);
    let pid = svc.browser_pid().await.unwrap();
    let runner = svc.clone();
    let url = format!("{site}/slow");
    let step = tokio::spawn(async move { runner.browse_url(&url).await });
    // The browse is under way once the page request reached the site; no event says so
    // from here, so give it a moment.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let t0 = std::time::Instant::now();
    // SAFETY: kill(2) of the browser process this test started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let obs = step.await.unwrap();
    assert!(
        obs.content.starts_with("[The browser was restarted because the previous browser process ended (killed by SIGKILL): its open tabs, history, cookies and page state were lost.]"),
        "{}",
        obs.content
    );
    assert!(obs.content.contains("slow page"), "{}", obs.content);
    // The new browser loads the 3 s page again; the death itself cost no timeout.
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(12),
        "{:?}",
        t0.elapsed()
    );
    assert_ne!(svc.browser_pid().await.unwrap(), pid);
    svc.shutdown().await;
}
