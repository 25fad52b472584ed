//! Reading a JSON-RPC 2.0 request body: one call or a batch, each checked for its envelope
//! (`"jsonrpc": "2.0"`, an id that is a string, a number or null, a method name, named params).
//! Pure: the fuzzers drive it with arbitrary bytes.

use serde_json::{Value, json};

use super::{MAX_BATCH_CALLS, RpcError};

/// One well-formed call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Its id; `None` for a notification (no answer).
    pub id: Option<Value>,
    /// The method.
    pub method: String,
    /// Named parameters (an empty object when none were given).
    pub params: Value,
}

/// A call, or the error to answer it with (and the id to answer under).
pub type Parsed = Result<Call, (Value, RpcError)>;

/// What a request body holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// A single call.
    Single(Parsed),
    /// A batch of 1 to [`MAX_BATCH_CALLS`] calls.
    Batch(Vec<Parsed>),
}

/// Reads a request body. An error here is answered once, with a null id.
pub fn parse_body(body: &[u8]) -> Result<Request, RpcError> {
    let value: Value = serde_json::from_slice(body).map_err(RpcError::parse)?;
    match value {
        Value::Array(calls) => {
            if calls.is_empty() || calls.len() > MAX_BATCH_CALLS {
                return Err(RpcError::invalid_request(format!(
                    "a batch holds 1 to {MAX_BATCH_CALLS} calls"
                )));
            }
            Ok(Request::Batch(calls.into_iter().map(parse_call).collect()))
        }
        call => Ok(Request::Single(parse_call(call))),
    }
}

/// Checks one call object.
pub fn parse_call(call: Value) -> Parsed {
    let Value::Object(call) = call else {
        return Err((Value::Null, RpcError::invalid_request("expected an object")));
    };
    let id = call.get("id").cloned();
    let id_valid = matches!(
        id,
        None | Some(Value::Null | Value::Number(_) | Value::String(_))
    );
    if call.get("jsonrpc") != Some(&json!("2.0")) || !id_valid {
        return Err((
            id.filter(|_| id_valid).unwrap_or(Value::Null),
            RpcError::invalid_request("expected \"jsonrpc\": \"2.0\" and a string or number id"),
        ));
    }
    let Some(method) = call.get("method").and_then(Value::as_str) else {
        return Err((
            id.unwrap_or(Value::Null),
            RpcError::invalid_request("missing method"),
        ));
    };
    let params = match call.get("params") {
        None | Some(Value::Null) => json!({}),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => {
            return Err((
                id.unwrap_or(Value::Null),
                RpcError::invalid_params("params must be an object of named parameters"),
            ));
        }
    };
    Ok(Call {
        id,
        method: method.to_string(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_batches_and_every_refusal() {
        let single = parse_body(br#"{"jsonrpc":"2.0","id":1,"method":"status"}"#).unwrap();
        assert!(
            matches!(single, Request::Single(Ok(Call { ref method, .. })) if method == "status")
        );
        assert_eq!(parse_body(b"{not json").unwrap_err().code, -32700);
        assert_eq!(parse_body(b"[]").unwrap_err().code, -32600);
        let Request::Batch(calls) =
            parse_body(br#"[{"jsonrpc":"2.0","method":"x"},{"id":[1]},7,{"jsonrpc":"2.0","id":"a","method":"m","params":[1]}]"#)
                .unwrap()
        else {
            panic!("a batch");
        };
        assert!(matches!(&calls[0], Ok(Call { id: None, .. })));
        assert!(matches!(&calls[1], Err((Value::Null, e)) if e.code == -32600));
        assert!(matches!(&calls[2], Err((_, e)) if e.code == -32600));
        assert!(matches!(&calls[3], Err((id, e)) if e.code == -32602 && id == "a"));
    }
}
