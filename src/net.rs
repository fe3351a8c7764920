//! Small network-policy helpers shared by the clients and the sandbox.

use std::net::IpAddr;

/// True for `localhost`, `127.0.0.0/8` and `::1` (with or without `[]` and a port).
pub fn is_loopback_host(host_port: &str) -> bool {
    let h = host_port.trim().to_ascii_lowercase();
    // strip a port: "[::1]:8080", "127.0.0.1:80", "localhost:3000"
    let host = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or("").to_string()
    } else if h.matches(':').count() == 1 {
        h.split(':').next().unwrap_or("").to_string()
    } else {
        h.clone()
    };
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// Largest response body a client reads (anything longer is cut and reported).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// An error and its chain of sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Why a response body could not be read whole.
pub enum BodyError {
    /// The connection broke or timed out mid-body.
    Transport(String),
    /// The body is larger than [`MAX_RESPONSE_BYTES`]; the first bytes are kept.
    TooLarge(Vec<u8>),
}

/// Read a response body, stopping at [`MAX_RESPONSE_BYTES`].
pub async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut buf = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    let room = MAX_RESPONSE_BYTES - buf.len();
                    buf.extend_from_slice(&chunk[..room]);
                    return Err(BodyError::TooLarge(buf));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf),
            Err(e) if e.is_timeout() => {
                return Err(BodyError::Transport("timed out reading the answer".into()));
            }
            Err(e) => return Err(BodyError::Transport(error_chain(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_detection() {
        for h in [
            "localhost",
            "127.0.0.1",
            "127.1.2.3:8080",
            "[::1]:9",
            "::1",
            "LOCALHOST:80",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1",
            "128.0.0.1",
            "[::2]",
            "localhost.example.com",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
