//! JSON-RPC 2.0 over HTTP (single and batch requests), Prometheus text at `/metrics`, and
//! `/health`. Bad requests get JSON-RPC errors with the codes the specification assigns.

pub mod client;
pub mod faults;
pub mod guard;
pub mod methods;
pub mod mining;
pub mod request;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::context::NodeContext;
use guard::{Guard, Refused};

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// Most calls in one batch.
pub const MAX_BATCH_CALLS: usize = 1_000;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code.
    pub code: i64,
    /// A one-line message.
    pub message: String,
    /// Extra data.
    pub data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
    /// -32700.
    pub fn parse(detail: impl std::fmt::Display) -> Self {
        Self::new(-32700, format!("parse error: {detail}"))
    }
    /// -32600.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(-32600, format!("invalid request: {}", detail.into()))
    }
    /// -32601.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(-32601, format!("method not found: {method}"))
    }
    /// -32602.
    pub fn invalid_params(detail: impl Into<String>) -> Self {
        Self::new(-32602, format!("invalid params: {}", detail.into()))
    }
    /// -32603.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(-32603, format!("internal error: {}", detail.into()))
    }
    /// -32004: the thing asked for does not exist.
    pub fn not_found(detail: String) -> Self {
        Self::new(-32004, detail)
    }
    /// -32010: a transaction was refused.
    pub fn rejected(reason: String, label: &str) -> Self {
        RpcError {
            code: -32010,
            message: format!("transaction rejected: {reason}"),
            data: Some(json!({ "reason": label })),
        }
    }
    /// -32011: the engine refused a command.
    pub fn command_rejected(reason: String) -> Self {
        Self::new(-32011, reason)
    }
    /// -32001: the method needs the node's credential.
    pub fn unauthorized(detail: String) -> Self {
        Self::new(-32001, detail)
    }
    /// -32012: the node is overloaded; retry.
    pub fn busy() -> Self {
        Self::new(-32012, "node is busy, retry later")
    }
    /// -32012 with the reason (a full mempool, say) and when to try again: retry the same call
    /// after `data.retry_after_ms`.
    pub fn busy_because(reason: String, retry_after: std::time::Duration) -> Self {
        RpcError {
            code: -32012,
            message: format!("node is busy, retry later: {reason}"),
            data: Some(json!({ "retry_after_ms": retry_after.as_millis() as u64 })),
        }
    }

    fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

fn reply(id: Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(error) => json!({ "jsonrpc": "2.0", "id": id, "error": error.to_json() }),
    }
}

/// Runs one parsed call; `None` for a notification (no id). Admin methods run only when the
/// request is `authorized`.
async fn one(ctx: &Arc<NodeContext>, call: request::Parsed, authorized: bool) -> Option<Value> {
    let call = match call {
        Ok(call) => call,
        Err((id, error)) => return Some(reply(id, Err(error))),
    };
    let result = if guard::is_admin(&call.method) && !authorized {
        Err(RpcError::unauthorized(
            Refused::Unauthorized(call.method.clone()).to_string(),
        ))
    } else {
        methods::call(ctx, &call.method, &call.params).await
    };
    call.id.map(|id| reply(id, result))
}

/// The state every request handler sees.
#[derive(Clone)]
struct Api {
    ctx: Arc<NodeContext>,
    guard: Arc<Guard>,
}

async fn rpc(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = api.guard.check_request(&headers) {
        let status = match refused {
            Refused::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::FORBIDDEN,
        };
        api.ctx.metrics.dropped("rpc_refused");
        let body = reply(
            Value::Null,
            Err(RpcError::invalid_request(refused.to_string())),
        );
        return (status, axum::Json(body)).into_response();
    }
    let authorized = api.guard.is_authorized(&headers);
    let ctx = api.ctx;
    let request = match request::parse_body(&body) {
        Ok(request) => request,
        Err(e) => return axum::Json(reply(Value::Null, Err(e))).into_response(),
    };
    match request {
        request::Request::Batch(calls) => {
            let mut out = Vec::with_capacity(calls.len());
            for call in calls {
                if let Some(r) = one(&ctx, call, authorized).await {
                    out.push(r);
                }
            }
            if out.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                axum::Json(Value::Array(out)).into_response()
            }
        }
        request::Request::Single(call) => match one(&ctx, call, authorized).await {
            Some(r) if r["error"]["code"] == -32001 => {
                (StatusCode::UNAUTHORIZED, axum::Json(r)).into_response()
            }
            Some(r) => axum::Json(r).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    }
}

async fn metrics(State(api): State<Api>) -> Response {
    let ctx = api.ctx;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ctx.metrics.encode(),
    )
        .into_response()
}

/// `ok` with 200 while the node is healthy; 503 with the problems as JSON otherwise.
async fn health(State(api): State<Api>) -> Response {
    let report = api.ctx.health.check(&api.ctx);
    if report.problems.is_empty() {
        "ok\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(report)).into_response()
    }
}

/// Serves the API on `listener` until the process stops, letting through only what `guard`
/// allows.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctx: Arc<NodeContext>,
    guard: Guard,
) -> std::io::Result<()> {
    let state = Api {
        ctx,
        guard: Arc::new(guard),
    };
    let app = Router::new()
        .route("/", post(rpc))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    axum::serve(listener, app).await
}
