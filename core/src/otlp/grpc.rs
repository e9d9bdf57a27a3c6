//! OTLP over gRPC: one unary `Export` call per payload, over HTTP/2 without
//! TLS (`h2` on a current-thread `tokio` runtime made for the call, so the
//! exporter stays a blocking API and needs no runtime from its host).

use std::future::poll_fn;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::OtlpError;
use super::proto::Signal;

/// The gRPC method of each signal's export.
fn method(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    }
}

/// Calls `Export` with the protobuf `message` on `host:port` (at
/// `address`); `Ok` when the answer's `grpc-status` is 0. The whole call
/// (connecting included) may take `timeout`.
pub(super) fn export(
    host: &str,
    port: u16,
    address: SocketAddr,
    timeout: Duration,
    headers: &[(String, String)],
    signal: Signal,
    message: &[u8],
) -> Result<(), OtlpError> {
    let url = format!("http://{host}:{port}{}", method(signal));
    let fail = |message: String| OtlpError::Transport {
        url: url.clone(),
        message,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| fail(format!("cannot start the I/O runtime: {e}")))?;
    let outcome = runtime.block_on(async {
        tokio::time::timeout(timeout, call(&url, address, headers, message)).await
    });
    match outcome {
        Err(_) => Err(fail(format!("no answer within {timeout:?}"))),
        Ok(Err(Failure::Transport(m))) => Err(fail(m)),
        Ok(Err(Failure::Status(code, message))) => Err(OtlpError::GrpcStatus {
            url: url.clone(),
            code,
            message,
        }),
        Ok(Ok(())) => Ok(()),
    }
}

enum Failure {
    Transport(String),
    Status(u32, String),
}

fn transport(e: impl std::fmt::Display) -> Failure {
    Failure::Transport(e.to_string())
}

/// The call's status from a header map (the trailers, or the headers of a
/// trailers-only answer): `None` when it has no `grpc-status`.
fn status(headers: &http::HeaderMap) -> Option<Result<(), Failure>> {
    let code = headers.get("grpc-status")?;
    let code: u32 = match code.to_str().ok().and_then(|c| c.trim().parse().ok()) {
        Some(c) => c,
        None => {
            return Some(Err(Failure::Transport(
                "a `grpc-status` that is not a number".into(),
            )));
        }
    };
    if code == 0 {
        return Some(Ok(()));
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Some(Err(Failure::Status(code, message)))
}

async fn call(
    url: &str,
    address: SocketAddr,
    headers: &[(String, String)],
    message: &[u8],
) -> Result<(), Failure> {
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(transport)?;
    let _ = tcp.set_nodelay(true);
    let (client, connection) = h2::client::handshake(tcp).await.map_err(transport)?;
    let driver = tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header(
            "user-agent",
            concat!("agentriage/", env!("CARGO_PKG_VERSION")),
        )
        .body(())
        .map_err(transport)?;
    for (name, value) in headers {
        // gRPC metadata names are lower case.
        let name = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(transport)?;
        let value = http::HeaderValue::from_str(value).map_err(transport)?;
        request.headers_mut().append(name, value);
    }
    let mut client = client.ready().await.map_err(transport)?;
    let (answer, mut stream) = client.send_request(request, false).map_err(transport)?;

    // A gRPC message: uncompressed flag, 4-byte big-endian length, bytes.
    let length = u32::try_from(message.len())
        .map_err(|_| Failure::Transport("the message is larger than 4 GiB".into()))?;
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    let mut data = Bytes::from(framed);
    // Send as the receiver's flow-control windows allow.
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(granted) => granted.map_err(transport)?,
            None => return Err(Failure::Transport("the stream closed while sending".into())),
        };
        if granted == 0 {
            continue;
        }
        let chunk = data.split_to(granted.min(data.len()));
        stream
            .send_data(chunk, data.is_empty())
            .map_err(transport)?;
    }

    let answer = answer.await.map_err(transport)?;
    if answer.status() != http::StatusCode::OK {
        return Err(Failure::Transport(format!(
            "answered HTTP {} instead of a gRPC answer",
            answer.status().as_u16()
        )));
    }
    if let Some(done) = status(answer.headers()) {
        driver.abort();
        return done;
    }
    let mut body = answer.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(transport)?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body.trailers().await.map_err(transport)?;
    driver.abort();
    match trailers.as_ref().and_then(status) {
        Some(done) => done,
        None => Err(Failure::Transport("the answer has no `grpc-status`".into())),
    }
}
