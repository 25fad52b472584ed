//! Binding the node's listening sockets. A port another program listens on is refused at once,
//! with a clear message. A port that is only held by a passing connection (after a restart, an
//! OS-chosen port can be taken as the source port of some client's outgoing connection until it
//! closes) is waited for, a bounded time.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tracing::warn;

use crate::error::NodeError;

/// How long to wait for a port held by a passing connection.
const PORT_WAIT: Duration = Duration::from_secs(15);

/// Binds `addr` (for `what`: `rpc` or `p2p`), waiting while the port is only held by a
/// connection, not by a listener.
pub fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, NodeError> {
    let started = Instant::now();
    let mut warned = false;
    loop {
        let error = match TcpListener::bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => e,
        };
        let listened_on = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
        if error.kind() != ErrorKind::AddrInUse || listened_on || started.elapsed() > PORT_WAIT {
            let reason = if listened_on {
                format!("{error}; another program listens there")
            } else {
                error.to_string()
            };
            return Err(NodeError::Listen {
                what,
                addr: addr.to_string(),
                reason,
            });
        }
        if !warned {
            warn!(what, %addr, "port held by a closing connection; waiting for it");
            warned = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
