//! Failpoints for crash tests: in debug builds, `PASSBACK_FAILPOINT=NAME:N`
//! makes the process abort (as a `kill -9` would) the N-th time it reaches the
//! point called NAME. Release builds compile every point to nothing.
//!
//! Points: `after_journal_commit` (an attempt is durable, its request has not
//! left), `after_response` (the LMS answered, the answer is not recorded).

#[cfg(debug_assertions)]
mod active {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Armed {
        name: String,
        at: u64,
        hits: AtomicU64,
    }

    fn armed() -> Option<&'static Armed> {
        static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let spec = std::env::var("PASSBACK_FAILPOINT").ok()?;
                let (name, at) = spec.split_once(':')?;
                Some(Armed {
                    name: name.trim().to_string(),
                    at: at.trim().parse().ok()?,
                    hits: AtomicU64::new(0),
                })
            })
            .as_ref()
    }

    pub fn hit(name: &str) {
        if let Some(a) = armed()
            && a.name == name
            && a.hits.fetch_add(1, Ordering::SeqCst) + 1 == a.at
        {
            eprintln!("failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}

/// Reach the failpoint `name` (see the module docs).
#[inline]
pub fn hit(_name: &str) {
    #[cfg(debug_assertions)]
    active::hit(_name);
}
