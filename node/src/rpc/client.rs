//! A small blocking JSON-RPC client over one keep-alive HTTP/1.1 connection, for the CLI, the
//! benchmark and the tests (the API is on loopback; no TLS, no proxies).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

/// Largest response accepted.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not connect, send or read.
    #[error("cannot reach the node at {addr}: {source}")]
    Io {
        /// The node's RPC address.
        addr: String,
        /// What happened.
        source: std::io::Error,
    },
    /// The answer was not HTTP/JSON-RPC.
    #[error("bad answer from {addr}: {detail}")]
    Protocol {
        /// The node's RPC address.
        addr: String,
        /// What was wrong.
        detail: String,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{message} (code {code})")]
    Rpc {
        /// The code.
        code: i64,
        /// The message.
        message: String,
        /// Extra data.
        data: Option<Value>,
    },
}

/// A client for one node.
pub struct RpcClient {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
    next_id: u64,
    timeout: Duration,
    /// The node's credential, sent with every request (admin methods need it).
    token: Option<String>,
}

impl RpcClient {
    /// A client for the node whose RPC listens at `addr` (`host:port`, or a `http://` URL).
    pub fn new(addr: &str) -> Self {
        let addr = addr
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        RpcClient {
            addr,
            conn: None,
            token: None,
            next_id: 1,
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets the read/write timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the node's credential (its `.cookie` secret or configured token) with every call.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The node's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io {
            addr: self.addr.clone(),
            source,
        }
    }

    fn protocol(&self, detail: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            detail: detail.into(),
        }
    }

    /// Sends an HTTP request and returns the body.
    pub fn http(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        // One retry on a fresh connection: the node may have closed an idle keep-alive one.
        match self.http_once(method, path, body) {
            Ok(body) => Ok(body),
            Err(ClientError::Io { .. }) if self.conn.is_none() => {
                self.http_once(method, path, body)
            }
            Err(e) => Err(e),
        }
    }

    fn http_once(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(&self.addr).map_err(|e| self.io(e))?;
            stream
                .set_read_timeout(Some(self.timeout))
                .map_err(|e| self.io(e))?;
            stream
                .set_write_timeout(Some(self.timeout))
                .map_err(|e| self.io(e))?;
            stream.set_nodelay(true).map_err(|e| self.io(e))?;
            self.conn = Some(BufReader::new(stream));
        }
        let result = self.exchange(method, path, body);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn exchange(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        let addr = self.addr.clone();
        let conn = self.conn.as_mut().ok_or_else(|| ClientError::Protocol {
            addr: addr.clone(),
            detail: "no connection".into(),
        })?;
        let authorization = self
            .token
            .as_ref()
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{authorization}content-length: {}\r\n\r\n",
            body.len()
        );
        let io = |source| ClientError::Io {
            addr: addr.clone(),
            source,
        };
        let stream = conn.get_mut();
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body).map_err(io)?;
        let mut status = String::new();
        conn.read_line(&mut status).map_err(io)?;
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| ClientError::Protocol {
                addr: addr.clone(),
                detail: format!("not HTTP: {status:?}"),
            })?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).map_err(io)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        if length > MAX_RESPONSE_BYTES {
            return Err(ClientError::Protocol {
                addr,
                detail: format!("response of {length} bytes"),
            });
        }
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).map_err(io)?;
        // Refusals before a method runs (401, 403, 415) carry a JSON-RPC error body too.
        if ![200, 204, 401, 403, 415].contains(&code) {
            return Err(ClientError::Protocol {
                addr,
                detail: format!("HTTP {code}: {}", String::from_utf8_lossy(&body)),
            });
        }
        Ok(body)
    }

    /// Calls `method` with named `params` and returns the result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let body = self.http("POST", "/", request.to_string().as_bytes())?;
        let response: Value =
            serde_json::from_slice(&body).map_err(|e| self.protocol(e.to_string()))?;
        if let Some(error) = response.get("error") {
            return Err(ClientError::Rpc {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
                data: error.get("data").cloned(),
            });
        }
        response
            .get("result")
            .cloned()
            .ok_or_else(|| self.protocol("no result"))
    }

    /// Fetches `/metrics`.
    pub fn metrics(&mut self) -> Result<String, ClientError> {
        let body = self.http("GET", "/metrics", b"")?;
        Ok(String::from_utf8_lossy(&body).to_string())
    }

    /// `/health`: `Ok("ok")` while the node is healthy, an error carrying the problems otherwise.
    pub fn health(&mut self) -> Result<String, ClientError> {
        let body = self.http("GET", "/health", b"")?;
        Ok(String::from_utf8_lossy(&body).trim().to_string())
    }
}
