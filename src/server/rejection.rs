//! Framework rejections in the protocol's shape: an error answer that is not JSON (axum's
//! own rejections of a body over the limit, a query string that does not deserialize, a
//! multipart body without a boundary, ...) gets its text wrapped as `{"detail": text}`, so
//! every 4xx/5xx a client sees has the envelope of `docs/spec/protocol.md` §3.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The texts of axum's rejections are one line; anything longer is cut to this.
const MAX_DETAIL: usize = 4096;

/// Middleware: see the module doc.
pub async fn json_detail(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, MAX_DETAIL)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::json!({ "detail": detail }).to_string();
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::{get, post};
    use axum::Router;
    use tower::ServiceExt;

    async fn call(app: Router, req: Request<Body>) -> (StatusCode, String, String) {
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let ct = res.headers()[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn plain_text_rejections_become_detail_json() {
        let app = Router::new()
            .route(
                "/q",
                get(
                    |_: axum::extract::Query<std::collections::HashMap<String, u8>>| async { "ok" },
                ),
            )
            .route("/b", post(|_: axum::body::Bytes| async { "ok" }))
            .route("/fine", get(|| async { "plain ok" }))
            .layer(axum::extract::DefaultBodyLimit::max(8))
            .layer(axum::middleware::from_fn(super::json_detail));
        let (st, ct, body) = call(
            app.clone(),
            Request::get("/q?a=300").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(
            (st, ct.as_str()),
            (StatusCode::BAD_REQUEST, "application/json")
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .starts_with("Failed to deserialize query string"),
            "{v}"
        );
        let (st, ct, body) = call(
            app.clone(),
            Request::post("/b").body(Body::from("0123456789")).unwrap(),
        )
        .await;
        assert_eq!(
            (st, ct.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, "application/json")
        );
        assert!(body.contains("length limit exceeded"), "{body}");
        // Successes pass untouched.
        let (st, ct, body) = call(app, Request::get("/fine").body(Body::empty()).unwrap()).await;
        assert_eq!((st, body.as_str()), (StatusCode::OK, "plain ok"));
        assert!(ct.starts_with("text/plain"));
    }
}
