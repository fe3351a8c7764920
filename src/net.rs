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
