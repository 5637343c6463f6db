//! `Connection: close` on error answers to requests whose body may be left unread.
//!
//! A handler that refuses a request early (bad key, relative upload destination, a body over
//! its limit) answers without reading the rest of the body. hyper then closes the connection
//! after the answer, but the answer itself said nothing about it, so a client that pools
//! connections (requests, httpx) may send its next request down the closing socket and get
//! "Remote end closed connection without response". Saying so in the header makes the client
//! open a new connection instead; error answers are rare, so the cost is nil.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Middleware: see the module doc.
pub async fn close_after_refused_body(req: Request, next: Next) -> Response {
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let mut res = next.run(req).await;
    if has_body && (res.status().is_client_error() || res.status().is_server_error()) {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}
