//! The gRPC server: the ProcessService and server reflection (v1 and v1alpha, for grpcurl
//! and other reflection clients), behind the API-key interceptor.

use std::future::Future;

use futures_util::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};

use crate::wire::process::process_service_server::ProcessServiceServer;
use crate::wire::FILE_DESCRIPTOR_SET;
use crate::AgentSandbox;

/// Why the gRPC server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The reflection descriptors did not load (a build problem).
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

pub(crate) async fn serve(
    api: AgentSandbox,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let key = api.shared.options.api_key.clone();
    let check = move |req: Request<()>| {
        let m = req.metadata();
        let session = m.get("x-session-api-key").map(|v| v.as_bytes());
        let bearer = m.get("authorization").map(|v| v.as_bytes());
        if key.admits(session, bearer) {
            Ok(req)
        } else {
            Err(Status::unauthenticated("missing or invalid API key"))
        }
    };
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    // Small messages (an `echo hi`, a 2-byte chunk) must not wait for Nagle.
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    });
    // HTTP/2 streams per connection stay unlimited (tonic's default): a client asking for
    // more processes than the cap hears RESOURCE_EXHAUSTED from the service at once. A
    // stream limit would instead refuse streams at the HTTP/2 level, and past h2's 1024
    // local resets the whole connection is torn down (its rapid-reset defence).
    tonic::transport::Server::builder()
        .add_service(InterceptedService::new(
            ProcessServiceServer::new(api.process_service()),
            check.clone(),
        ))
        .add_service(InterceptedService::new(v1, check.clone()))
        .add_service(InterceptedService::new(v1alpha, check))
        .serve_with_incoming_shutdown(incoming, stop)
        .await?;
    Ok(())
}
