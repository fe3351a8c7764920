//! Politeness per LMS host: at most N requests in flight, an optional rate
//! limit (`governor`), a pause for everyone when the host says to wait
//! (`Retry-After`, throttling), and slowing down before the host's request
//! budget runs out (Canvas's `X-Rate-Limit-Remaining` / `X-Request-Cost`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::http::RateBudget;

/// How fast a throttled budget refills, when the LMS does not say: Canvas's bucket
/// leaks at about this many units a second per token (conservative).
pub const ASSUMED_LEAK_PER_SEC: f64 = 10.0;

/// The longest Passback pauses a host to let its budget refill.
pub const MAX_BUDGET_PAUSE: Duration = Duration::from_secs(10);

/// One host's limits.
pub struct Host {
    permits: Semaphore,
    concurrency: usize,
    paused_until: Mutex<Option<Instant>>,
    limiter: Option<DefaultDirectRateLimiter>,
}

impl Host {
    fn new(concurrency: usize, rate: Option<NonZeroU32>) -> Self {
        Self {
            permits: Semaphore::new(concurrency.max(1)),
            concurrency: concurrency.max(1),
            paused_until: Mutex::new(None),
            limiter: rate.map(|r| RateLimiter::direct(Quota::per_second(r))),
        }
    }

    fn pause_left(&self) -> Option<Instant> {
        let until = *self.paused_until.lock().expect("pause lock");
        until.filter(|u| *u > Instant::now())
    }

    /// Wait until a request may leave: no pause, a free slot, the rate limit.
    pub async fn enter(&self) -> SemaphorePermit<'_> {
        loop {
            if let Some(until) = self.pause_left() {
                tokio::time::sleep_until(until).await;
            }
            let permit = self
                .permits
                .acquire()
                .await
                .expect("the semaphore is never closed");
            if self.pause_left().is_some() {
                // A pause began while waiting for the slot: give it back and wait.
                drop(permit);
                continue;
            }
            if let Some(l) = &self.limiter {
                l.until_ready().await;
            }
            return permit;
        }
    }

    /// No request leaves for `d` (the host asked to wait).
    pub fn pause_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut p = self.paused_until.lock().expect("pause lock");
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }

    /// Slow down before the budget runs out: when what is left would not cover
    /// two more rounds of the requests in flight, pause long enough for the bucket
    /// to refill that much. Returns the pause taken.
    pub fn spend(&self, b: RateBudget) -> Option<Duration> {
        let remaining = b.remaining?;
        let cost = b.cost.filter(|c| *c > 0.0).unwrap_or(1.0);
        let low_water = 2.0 * cost * self.concurrency as f64;
        if remaining >= low_water {
            return None;
        }
        let secs = ((low_water - remaining) / ASSUMED_LEAK_PER_SEC).min(MAX_BUDGET_PAUSE.as_secs_f64());
        let d = Duration::from_secs_f64(secs.max(0.05));
        self.pause_for(d);
        Some(d)
    }
}

/// Every host a run talks to.
pub struct Hosts {
    concurrency: usize,
    rate: Option<NonZeroU32>,
    map: Mutex<HashMap<String, Arc<Host>>>,
}

impl Hosts {
    /// `concurrency` requests in flight per host, and at most `rate` a second.
    pub fn new(concurrency: usize, rate: Option<f64>) -> Self {
        Self {
            concurrency,
            rate: rate.and_then(|r| NonZeroU32::new(r.ceil().max(1.0) as u32)),
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, host: &str) -> Arc<Host> {
        let mut m = self.map.lock().expect("hosts lock");
        m.entry(host.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Host::new(self.concurrency, self.rate)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request_and_a_low_budget_slows_down() {
        let hosts = Hosts::new(2, None);
        let h = hosts.get("LMS.example.edu");
        assert!(
            Arc::ptr_eq(&h, &hosts.get("lms.example.edu")),
            "one state per host"
        );
        let start = Instant::now();
        h.pause_for(Duration::from_secs(3));
        let p = h.enter().await;
        assert!(start.elapsed() >= Duration::from_secs(3), "waited out the pause");
        drop(p);
        assert_eq!(
            h.spend(RateBudget {
                remaining: Some(600.0),
                cost: Some(20.0)
            }),
            None,
            "plenty left"
        );
        let d = h
            .spend(RateBudget {
                remaining: Some(10.0),
                cost: Some(20.0),
            })
            .unwrap();
        assert!(d > Duration::ZERO && d <= MAX_BUDGET_PAUSE);
        let before = Instant::now();
        let _p = h.enter().await;
        assert!(before.elapsed() >= d, "the budget pause holds requests back");
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_n_in_flight_per_host() {
        let hosts = Hosts::new(2, None);
        let h = hosts.get("a");
        let _one = h.enter().await;
        let _two = h.enter().await;
        let third = tokio::time::timeout(Duration::from_secs(1), h.enter()).await;
        assert!(third.is_err(), "a third request waits for a slot");
        let other = hosts.get("b");
        let _b = tokio::time::timeout(Duration::from_secs(1), other.enter())
            .await
            .expect("another host has its own slots");
    }
}
