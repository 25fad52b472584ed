//! What every RPC request must pass before any method runs: a JSON content type (a browser can
//! send `text/plain` across sites without asking, never `application/json`), a `Host` that names
//! the address the node listens on (a DNS-rebinding page names its own host), and, for the
//! methods that change the node or the chain, the node's credential: the `.cookie` written in its
//! home at start (mode 0600), or the `rpc_token` of its config.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use axum::http::{HeaderMap, header};
use synod_genesis::home::COOKIE_USER;

/// Methods that need the credential.
pub const ADMIN_METHODS: &[&str] = &[
    "propose",
    "transfer_leadership",
    "add_validator",
    "remove_validator",
    "mine",
    "set_mining",
    "inject_fault",
    "heal_faults",
];

/// Whether `method` changes the node or the chain.
pub fn is_admin(method: &str) -> bool {
    ADMIN_METHODS.contains(&method)
}

/// Why a request was refused before any method ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not `application/json`.
    #[error("requests must carry Content-Type: application/json")]
    ContentType,
    /// A `Host` that is not the node's address.
    #[error("Host {0:?} is not this node's RPC address")]
    Host(String),
    /// An admin method without a valid credential.
    #[error(
        "{0} changes the node and needs its credential: the .cookie in the node's home (the synod CLI reads it) or the configured rpc_token"
    )]
    Unauthorized(String),
}

/// The credentials and the address a node's RPC accepts.
#[derive(Clone, Debug)]
pub struct Guard {
    cookie: String,
    token: Option<String>,
    bound: SocketAddr,
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes standard base64 (for HTTP basic authentication); `None` if it is not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|a| *a == c)? as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

impl Guard {
    /// A guard for a node listening on `bound`, with its cookie secret and optional token.
    pub fn new(bound: SocketAddr, cookie: String, token: Option<String>) -> Self {
        Guard {
            cookie,
            token,
            bound,
        }
    }

    /// Checks the content type and the host of a request.
    pub fn check_request(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(Refused::ContentType);
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !self.host_is_ours(host) {
            return Err(Refused::Host(host.chars().take(100).collect()));
        }
        Ok(())
    }

    /// Whether `host` (`name:port`) names the address this node listens on.
    fn host_is_ours(&self, host: &str) -> bool {
        let Some((name, port)) = host.rsplit_once(':') else {
            return false;
        };
        if port.parse::<u16>().ok() != Some(self.bound.port()) {
            return false;
        }
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let bound = self.bound.ip();
        if name.eq_ignore_ascii_case("localhost") {
            return bound.is_loopback() || bound.is_unspecified();
        }
        match name.parse::<IpAddr>() {
            Ok(ip) if bound.is_unspecified() => !ip.is_unspecified(),
            Ok(ip) => ip == bound,
            Err(_) => false,
        }
    }

    /// Whether the request carries the node's credential (`Authorization: Bearer <secret>` or
    /// basic authentication as `__cookie__:<secret>`).
    pub fn is_authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let secret = if let Some(token) = value.strip_prefix("Bearer ") {
            token.trim().as_bytes().to_vec()
        } else if let Some(encoded) = value.strip_prefix("Basic ") {
            let Some(decoded) = base64_decode(encoded.trim()) else {
                return false;
            };
            let text = String::from_utf8_lossy(&decoded).to_string();
            match text.split_once(':') {
                Some((user, secret)) if user == COOKIE_USER => secret.as_bytes().to_vec(),
                _ => return false,
            }
        } else {
            return false;
        };
        if secret.is_empty() {
            return false;
        }
        constant_time_eq(&secret, self.cookie.as_bytes())
            || self
                .token
                .as_ref()
                .is_some_and(|t| constant_time_eq(&secret, t.as_bytes()))
    }
}

/// Writes a fresh random cookie to `path` (mode 0600, replacing any old one) and returns its
/// secret.
pub fn write_cookie(path: &Path) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let tmp = path.with_extension("cookie.tmp");
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(format!("{COOKIE_USER}:{secret}").as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let guard = Guard::new("127.0.0.1:8545".parse().unwrap(), "s3cret".into(), None);
        let ok = headers(&[
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::HOST, "127.0.0.1:8545"),
        ]);
        assert_eq!(guard.check_request(&ok), Ok(()));
        let local = headers(&[
            (header::CONTENT_TYPE, "application/json"),
            (header::HOST, "localhost:8545"),
        ]);
        assert_eq!(guard.check_request(&local), Ok(()));
        let plain = headers(&[
            (header::CONTENT_TYPE, "text/plain"),
            (header::HOST, "127.0.0.1:8545"),
        ]);
        assert_eq!(guard.check_request(&plain), Err(Refused::ContentType));
        for host in ["evil.example:8545", "127.0.0.1:80", "10.0.0.1:8545", ""] {
            let rebinding = headers(&[
                (header::CONTENT_TYPE, "application/json"),
                (header::HOST, host),
            ]);
            assert!(
                matches!(guard.check_request(&rebinding), Err(Refused::Host(_))),
                "{host}"
            );
        }
    }

    #[test]
    fn only_the_cookie_or_the_token_authorize() {
        let guard = Guard::new(
            "127.0.0.1:1".parse().unwrap(),
            "s3cret".into(),
            Some("t0ken".into()),
        );
        let with = |v: &str| headers(&[(header::AUTHORIZATION, v)]);
        assert!(guard.is_authorized(&with("Bearer s3cret")));
        assert!(guard.is_authorized(&with("Bearer t0ken")));
        // "__cookie__:s3cret" in base64.
        assert!(guard.is_authorized(&with("Basic X19jb29raWVfXzpzM2NyZXQ=")));
        assert!(!guard.is_authorized(&with("Bearer s3cre")));
        assert!(!guard.is_authorized(&with("Basic X19jb29raWVfXzpub3Bl")));
        assert!(!guard.is_authorized(&HeaderMap::new()));
        assert!(is_admin("add_validator") && !is_admin("send_transaction"));
    }

    #[test]
    fn the_cookie_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".cookie");
        let secret = write_cookie(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let home = synod_genesis::Home::new(dir.path());
        assert_eq!(home.read_cookie(), Some(secret));
    }
}
