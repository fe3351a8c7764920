//! Reproducible fault injection for the sandbox LMS.
//!
//! Faults come from two places: a *script* (the next N requests get these
//! faults, in order) for deterministic tests, and *rates* (each request gets a
//! fault with some probability) drawn from a seeded RNG, so a run with the same
//! seed and the same request order sees the same faults.
//!
//! An optional request *budget* imitates Canvas's leaky bucket: every request
//! costs some units, the bucket refills on the real clock, and a request that
//! finds too little left is throttled before anything else happens to it.

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// One way the sandbox can misbehave on a request. The admin call accepts the same
/// names as the `--fail-next` / `--fault` flags (`503`, `html`, …) as well as its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Fault {
    /// HTTP 500 with an HTML error page.
    Status500,
    /// HTTP 503 with `Retry-After`.
    Status503,
    /// HTTP 429 with `Retry-After`.
    RateLimit,
    /// Never answer (the client's timeout must fire).
    Hang,
    /// Start a 200 answer and break the connection mid-body.
    Reset,
    /// HTTP 200 with truncated, malformed XML.
    MalformedXml,
    /// HTTP 200 with an HTML page (a login or proxy page).
    HtmlPage,
    /// Older Canvas throttling: HTTP 403, `text/plain` body `403 Forbidden (Rate Limit
    /// Exceeded)`, `X-Rate-Limit-Remaining: 0` and `X-Request-Cost`; no `Retry-After`.
    ForbiddenRateLimit,
    /// Moodle in debug mode: the request is processed normally and its answer (same
    /// status and Content-Type) starts with a PHP notice in HTML. The LTIAAS API answers
    /// normally (JSON with a notice in front means nothing there).
    PhpNoticeHtml,
    /// As [`Fault::PhpNoticeHtml`] with the plain-text (CLI-style) notice.
    PhpNoticeText,
}

/// What [`Fault::PhpNoticeHtml`] puts in front of the answer.
pub const PHP_NOTICE_HTML: &str = "<br />\n<b>Notice</b>:  Undefined index: foo in <b>/var/www/moodle/mod/lti/service.php</b> on line <b>42</b><br />\n";
/// What [`Fault::PhpNoticeText`] puts in front of the answer.
pub const PHP_NOTICE_TEXT: &str =
    "PHP Notice:  Undefined variable: bar in /var/www/moodle/lib/weblib.php on line 1700\n";
/// The body of the plain-text 403 throttling answer.
pub const FORBIDDEN_RATE_LIMIT_BODY: &str = "403 Forbidden (Rate Limit Exceeded)";
/// The body of the JSON 429 throttling answer (budget exhausted, new Canvas).
pub const RATE_LIMIT_JSON_BODY: &str = r#"{"errors":[{"message":"Rate Limit Exceeded"}]}"#;
/// `X-Request-Cost` of a scripted 403 when no budget is set.
pub const DEFAULT_REQUEST_COST: f64 = 1.0;

impl Fault {
    /// The PHP notice this fault puts in front of a normal answer, if it is one of those.
    pub fn php_notice(self) -> Option<&'static str> {
        match self {
            Fault::PhpNoticeHtml => Some(PHP_NOTICE_HTML),
            Fault::PhpNoticeText => Some(PHP_NOTICE_TEXT),
            _ => None,
        }
    }
}

impl TryFrom<String> for Fault {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "500" | "status500" => Fault::Status500,
            "503" | "status503" => Fault::Status503,
            "429" | "rate_limit" | "ratelimit" => Fault::RateLimit,
            "hang" => Fault::Hang,
            "reset" => Fault::Reset,
            "malformed" | "malformed_xml" => Fault::MalformedXml,
            "html" | "html_page" => Fault::HtmlPage,
            "403" | "forbidden_rate_limit" => Fault::ForbiddenRateLimit,
            "notice_html" | "php_notice_html" => Fault::PhpNoticeHtml,
            "notice_text" | "php_notice_text" => Fault::PhpNoticeText,
            other => {
                return Err(format!(
                    "unknown fault {other:?}: use 500, 503, 429, 403, hang, reset, malformed, html, \
                     notice_html or notice_text"
                ));
            }
        })
    }
}

/// A fault with the probability of hitting any one request (`KIND:RATE`, e.g. `503:0.2`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaultRate {
    pub fault: Fault,
    pub rate: f64,
}

impl FromStr for FaultRate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, rate) = s
            .split_once(':')
            .ok_or_else(|| format!("fault rate {s:?} must look like KIND:RATE, e.g. 503:0.2"))?;
        let rate: f64 = rate
            .parse()
            .map_err(|_| format!("fault rate {rate:?} is not a number between 0 and 1"))?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("fault rate {rate} is not between 0 and 1"));
        }
        Ok(FaultRate {
            fault: kind.parse()?,
            rate,
        })
    }
}

/// Settings that can be changed at start (flags) or at run time (admin call).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultConfig {
    /// Faults for the next requests, in order.
    #[serde(default)]
    pub script: Vec<Fault>,
    #[serde(default)]
    pub rates: Vec<FaultRate>,
    /// Added latency in milliseconds: `[min, max]`.
    #[serde(default)]
    pub latency_ms: Option<(u64, u64)>,
    /// `Retry-After` seconds for 429 and 503.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// A request budget (Canvas's leaky bucket); none by default.
    #[serde(default)]
    pub budget: Option<Budget>,
    /// How a request is answered when the budget is exhausted.
    #[serde(default)]
    pub budget_exhausted: BudgetAnswer,
}

/// Canvas's leaky bucket: each request costs `cost` units out of `capacity`, which
/// refills at `leak_per_sec` units per second. `CAPACITY:LEAK_PER_SEC:COST` on the
/// command line (e.g. `700:10:50`); an object or that string in the admin call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BudgetRepr")]
pub struct Budget {
    pub capacity: f64,
    pub leak_per_sec: f64,
    pub cost: f64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BudgetRepr {
    Text(String),
    Fields {
        capacity: f64,
        leak_per_sec: f64,
        cost: f64,
    },
}

impl TryFrom<BudgetRepr> for Budget {
    type Error = String;
    fn try_from(r: BudgetRepr) -> Result<Self, Self::Error> {
        match r {
            BudgetRepr::Text(s) => s.parse(),
            BudgetRepr::Fields {
                capacity,
                leak_per_sec,
                cost,
            } => Budget::new(capacity, leak_per_sec, cost),
        }
    }
}

impl Budget {
    /// A budget, if the numbers make one (capacity above 0, leak and cost 0 or more).
    pub fn new(capacity: f64, leak_per_sec: f64, cost: f64) -> Result<Self, String> {
        if !(capacity.is_finite() && capacity > 0.0) {
            return Err(format!("budget capacity {capacity} must be a number above 0"));
        }
        if !(leak_per_sec.is_finite() && leak_per_sec >= 0.0) {
            return Err(format!(
                "budget leak {leak_per_sec} must be a number of 0 or more"
            ));
        }
        if !(cost.is_finite() && cost >= 0.0) {
            return Err(format!("budget cost {cost} must be a number of 0 or more"));
        }
        Ok(Budget {
            capacity,
            leak_per_sec,
            cost,
        })
    }
}

impl FromStr for Budget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("budget {s:?} must look like CAPACITY:LEAK_PER_SEC:COST, e.g. 700:10:50");
        let parts: Vec<&str> = s.split(':').collect();
        let [c, l, k] = parts.as_slice() else {
            return Err(usage());
        };
        let num = |x: &str| x.trim().parse::<f64>().map_err(|_| usage());
        Budget::new(num(c)?, num(l)?, num(k)?)
    }
}

/// How a throttled request is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub enum BudgetAnswer {
    /// Old Canvas: the plain-text 403 of [`Fault::ForbiddenRateLimit`].
    #[serde(rename = "403")]
    Forbidden,
    /// New Canvas: 429 with `{"errors":[{"message":"Rate Limit Exceeded"}]}`, no `Retry-After`.
    #[default]
    #[serde(rename = "429")]
    TooManyRequests,
}

impl FromStr for BudgetAnswer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "403" => Ok(BudgetAnswer::Forbidden),
            "429" => Ok(BudgetAnswer::TooManyRequests),
            other => Err(format!("budget answer {other:?}: use 403 or 429")),
        }
    }
}

impl TryFrom<serde_json::Value> for BudgetAnswer {
    type Error = String;
    fn try_from(v: serde_json::Value) -> Result<Self, Self::Error> {
        match v {
            serde_json::Value::String(s) => s.parse(),
            serde_json::Value::Number(n) => n.to_string().parse(),
            other => Err(format!("budget answer {other}: use \"403\" or \"429\"")),
        }
    }
}

/// What the budget made of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Charge {
    /// What the request cost (`X-Request-Cost`), also when it was throttled.
    pub cost: f64,
    /// Units left after this request (`X-Rate-Limit-Remaining`).
    pub remaining: f64,
    /// `Some` when the bucket held less than the cost: answer this way, process nothing.
    pub throttled: Option<BudgetAnswer>,
}

/// The bucket's live level.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub fault: Option<Fault>,
    pub delay: Duration,
}

/// What the budget and the fault plan make of one request (decided under the lock,
/// acted on after it is released).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admission {
    /// The budget's charge (`None` without a budget).
    pub charge: Option<Charge>,
    /// The fault to inject (never drawn for a throttled request).
    pub fault: Option<Fault>,
    /// Latency to add before answering (zero for a throttled request).
    pub delay: Duration,
    /// `Retry-After` seconds for 429 and 503 faults.
    pub retry_after: u64,
    /// `X-Request-Cost` of a scripted 403.
    pub request_cost: f64,
}

impl Admission {
    /// `Some` when the budget throttles this request: answer so and process nothing.
    pub fn throttled(&self) -> Option<BudgetAnswer> {
        self.charge.and_then(|c| c.throttled)
    }
}

/// The live fault state.
#[derive(Debug)]
pub struct FaultPlan {
    script: VecDeque<Fault>,
    config: FaultConfig,
    rng: StdRng,
    bucket: Option<Bucket>,
}

impl FaultPlan {
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        Self {
            script: config.script.iter().copied().collect(),
            config,
            rng: StdRng::seed_from_u64(seed),
            bucket: None,
        }
    }

    /// Replace the configuration (the script starts over; the RNG continues; the
    /// bucket starts full when the budget changed and keeps its level otherwise).
    pub fn reconfigure(&mut self, config: FaultConfig) {
        self.script = config.script.iter().copied().collect();
        if config.budget != self.config.budget {
            self.bucket = None;
        }
        self.config = config;
    }

    /// Fill the bucket again (a reset).
    pub fn refill(&mut self) {
        self.bucket = None;
    }

    /// The bucket's level at `now`, refilled since it was last looked at.
    fn level(&mut self, budget: Budget, now: Instant) -> f64 {
        let b = self.bucket.get_or_insert(Bucket {
            level: budget.capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.level = (b.level + elapsed * budget.leak_per_sec).min(budget.capacity);
        b.at = b.at.max(now);
        b.level
    }

    /// Charge one request against the budget at `now` (pass `Instant::now()`); `None`
    /// when no budget is set. A throttled request takes nothing from the bucket.
    pub fn charge(&mut self, now: Instant) -> Option<Charge> {
        let budget = self.config.budget?;
        let level = self.level(budget, now);
        let admitted = level >= budget.cost;
        let remaining = if admitted { level - budget.cost } else { level };
        if let Some(b) = self.bucket.as_mut() {
            b.level = remaining;
        }
        Some(Charge {
            cost: budget.cost,
            remaining,
            throttled: (!admitted).then_some(self.config.budget_exhausted),
        })
    }

    /// What the bucket holds at `now` (`None` without a budget), for the admin calls.
    pub fn remaining(&mut self, now: Instant) -> Option<f64> {
        let budget = self.config.budget?;
        Some(self.level(budget, now))
    }

    /// `X-Request-Cost` of a scripted 403: the budget's cost, or [`DEFAULT_REQUEST_COST`].
    pub fn request_cost(&self) -> f64 {
        self.config.budget.map_or(DEFAULT_REQUEST_COST, |b| b.cost)
    }

    pub fn retry_after_secs(&self) -> u64 {
        self.config.retry_after_secs.unwrap_or(1)
    }

    /// Charge the budget, then (unless throttled) decide the request's fault and latency.
    /// A throttled request does not touch the script or the RNG: faults fall on the
    /// requests the budget lets through, in order.
    pub fn admit(&mut self, now: Instant) -> Admission {
        let charge = self.charge(now);
        let decision = if charge.is_some_and(|c| c.throttled.is_some()) {
            Decision {
                fault: None,
                delay: Duration::ZERO,
            }
        } else {
            self.decide()
        };
        Admission {
            charge,
            fault: decision.fault,
            delay: decision.delay,
            retry_after: self.retry_after_secs(),
            request_cost: self.request_cost(),
        }
    }

    /// Decide the fate of the next request.
    pub fn decide(&mut self) -> Decision {
        let delay = match self.config.latency_ms {
            Some((lo, hi)) if hi > lo => Duration::from_millis(self.rng.random_range(lo..=hi)),
            Some((lo, _)) => Duration::from_millis(lo),
            None => Duration::ZERO,
        };
        if let Some(f) = self.script.pop_front() {
            return Decision {
                fault: Some(f),
                delay,
            };
        }
        for fr in &self.config.rates {
            // Always draw, so the sequence does not depend on earlier outcomes.
            let x: f64 = self.rng.random();
            if x < fr.rate {
                return Decision {
                    fault: Some(fr.fault),
                    delay,
                };
            }
        }
        Decision { fault: None, delay }
    }
}

/// The `reset` fault's answer: a 200 whose body starts with `prefix` and then
/// breaks off with a connection reset.
pub(crate) fn reset_mid_body(content_type: &'static str, prefix: &'static [u8]) -> axum::response::Response {
    use axum::response::IntoResponse;
    let stream = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(prefix)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox: connection reset",
        )),
    ]);
    (
        axum::http::StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// Wait out a request's added latency, to the tenth of a millisecond: tokio's
/// timer rounds every sleep up to its next millisecond tick (a "20 ms" LMS would
/// answer in 20.5–21 ms on average, and benchmarks compare against 20), so the
/// last millisecond is slept by a blocking thread, which the OS wakes on time.
pub async fn sleep_latency(delay: std::time::Duration) {
    let deadline = std::time::Instant::now() + delay;
    let coarse = delay.saturating_sub(std::time::Duration::from_millis(2));
    if !coarse.is_zero() {
        tokio::time::sleep(coarse).await;
    }
    let rest = deadline.saturating_duration_since(std::time::Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_faults_and_rates() {
        assert_eq!("503".parse::<Fault>().unwrap(), Fault::Status503);
        assert_eq!("HTML".parse::<Fault>().unwrap(), Fault::HtmlPage);
        assert!("teapot".parse::<Fault>().is_err());
        // The admin call takes the flag names and the serialized names alike.
        let cfg: FaultConfig = serde_json::from_str(r#"{"script": ["503", "rate_limit", "html"]}"#).unwrap();
        assert_eq!(
            cfg.script,
            vec![Fault::Status503, Fault::RateLimit, Fault::HtmlPage]
        );
        let round: FaultConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(round, cfg);
        let r: FaultRate = "429:0.25".parse().unwrap();
        assert_eq!(r.fault, Fault::RateLimit);
        assert_eq!(r.rate, 0.25);
        assert!("429:2".parse::<FaultRate>().is_err());
        assert!("429".parse::<FaultRate>().is_err());
    }

    #[test]
    fn script_first_then_seeded_rates_reproducibly() {
        let cfg = FaultConfig {
            script: vec![Fault::RateLimit, Fault::Hang],
            rates: vec![FaultRate {
                fault: Fault::Status500,
                rate: 0.3,
            }],
            latency_ms: Some((5, 50)),
            retry_after_secs: Some(2),
            ..FaultConfig::default()
        };
        let mut a = FaultPlan::new(cfg.clone(), 42);
        let mut b = FaultPlan::new(cfg, 42);
        assert_eq!(a.decide().fault, Some(Fault::RateLimit));
        assert_eq!(a.decide().fault, Some(Fault::Hang));
        b.decide();
        b.decide();
        let sa: Vec<_> = (0..200).map(|_| a.decide()).collect();
        let sb: Vec<_> = (0..200).map(|_| b.decide()).collect();
        assert_eq!(sa, sb, "same seed, same faults");
        let hits = sa.iter().filter(|d| d.fault.is_some()).count();
        assert!((30..=90).contains(&hits), "about 30% of 200, got {hits}");
        assert!(
            sa.iter()
                .all(|d| d.delay >= Duration::from_millis(5) && d.delay <= Duration::from_millis(50))
        );
    }

    #[test]
    fn parse_the_throttling_and_notice_faults() {
        for (name, fault) in [
            ("403", Fault::ForbiddenRateLimit),
            ("forbidden_rate_limit", Fault::ForbiddenRateLimit),
            ("notice_html", Fault::PhpNoticeHtml),
            ("php_notice_html", Fault::PhpNoticeHtml),
            ("NOTICE_TEXT", Fault::PhpNoticeText),
            ("php_notice_text", Fault::PhpNoticeText),
        ] {
            assert_eq!(name.parse::<Fault>().unwrap(), fault, "{name}");
        }
        let err = "teapot".parse::<Fault>().unwrap_err();
        for listed in ["403", "notice_html", "notice_text", "500", "html"] {
            assert!(err.contains(listed), "{err}");
        }
        // Flag names in the admin call, serialized names back.
        let cfg: FaultConfig =
            serde_json::from_str(r#"{"script": ["403", "notice_html", "notice_text"]}"#).unwrap();
        assert_eq!(
            cfg.script,
            vec![
                Fault::ForbiddenRateLimit,
                Fault::PhpNoticeHtml,
                Fault::PhpNoticeText
            ]
        );
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(
            json["script"],
            serde_json::json!(["forbidden_rate_limit", "php_notice_html", "php_notice_text"])
        );
        let round: FaultConfig = serde_json::from_value(json).unwrap();
        assert_eq!(round, cfg);
        let r: FaultRate = "notice_text:0.5".parse().unwrap();
        assert_eq!(r.fault, Fault::PhpNoticeText);
        assert_eq!(
            "403:1".parse::<FaultRate>().unwrap().fault,
            Fault::ForbiddenRateLimit
        );
        assert_eq!(Fault::PhpNoticeHtml.php_notice(), Some(PHP_NOTICE_HTML));
        assert_eq!(Fault::PhpNoticeText.php_notice(), Some(PHP_NOTICE_TEXT));
        assert_eq!(Fault::ForbiddenRateLimit.php_notice(), None);
        assert!(PHP_NOTICE_HTML.starts_with("<br />\n<b>Notice</b>:  Undefined index: foo"));
        assert!(PHP_NOTICE_TEXT.starts_with("PHP Notice:  Undefined variable: bar"));
    }

    #[test]
    fn parse_budgets_and_their_answers() {
        let b: Budget = "700:10:50".parse().unwrap();
        assert_eq!(
            b,
            Budget {
                capacity: 700.0,
                leak_per_sec: 10.0,
                cost: 50.0
            }
        );
        assert_eq!("1.5:0:0.25".parse::<Budget>().unwrap().cost, 0.25);
        for bad in [
            "700:10",
            "700:10:50:1",
            "0:10:50",
            "700:-1:50",
            "700:10:-5",
            "a:b:c",
            "",
            "inf:1:1",
        ] {
            assert!(bad.parse::<Budget>().is_err(), "{bad}");
        }
        // The admin call takes an object or the flag's string.
        let cfg: FaultConfig = serde_json::from_str(
            r#"{"budget": {"capacity": 700, "leak_per_sec": 10, "cost": 50}, "budget_exhausted": "403"}"#,
        )
        .unwrap();
        assert_eq!(cfg.budget, Some(b));
        assert_eq!(cfg.budget_exhausted, BudgetAnswer::Forbidden);
        let cfg2: FaultConfig =
            serde_json::from_str(r#"{"budget": "700:10:50", "budget_exhausted": 403}"#).unwrap();
        assert_eq!(cfg2, cfg);
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(
            json["budget"],
            serde_json::json!({"capacity": 700.0, "leak_per_sec": 10.0, "cost": 50.0})
        );
        assert_eq!(json["budget_exhausted"], "403");
        assert_eq!(serde_json::from_value::<FaultConfig>(json).unwrap(), cfg);
        // Off by default; 429 (new Canvas) when only the budget is given.
        let plain: FaultConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(plain.budget, None);
        assert_eq!(plain.budget_exhausted, BudgetAnswer::TooManyRequests);
        for bad in [
            r#"{"budget": "700:10"}"#,
            r#"{"budget": {"capacity": 0, "leak_per_sec": 1, "cost": 1}}"#,
            r#"{"budget_exhausted": "418"}"#,
            r#"{"budget_exhausted": true}"#,
        ] {
            assert!(serde_json::from_str::<FaultConfig>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            "429".parse::<BudgetAnswer>().unwrap(),
            BudgetAnswer::TooManyRequests
        );
        assert!("500".parse::<BudgetAnswer>().is_err());
    }

    fn budgeted(capacity: f64, leak_per_sec: f64, cost: f64) -> FaultConfig {
        FaultConfig {
            budget: Some(Budget::new(capacity, leak_per_sec, cost).unwrap()),
            ..FaultConfig::default()
        }
    }

    #[test]
    fn the_bucket_charges_refills_and_throttles() {
        let mut plan = FaultPlan::new(budgeted(100.0, 10.0, 40.0), 1);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let c = plan.charge(t0).unwrap();
        assert_eq!((c.cost, c.remaining, c.throttled), (40.0, 60.0, None));
        assert_eq!(plan.charge(t0).unwrap().remaining, 20.0);
        // Too little left: throttled, nothing taken.
        let c = plan.charge(t0).unwrap();
        assert_eq!(c.throttled, Some(BudgetAnswer::TooManyRequests));
        assert_eq!(c.remaining, 20.0);
        assert_eq!(plan.remaining(t0), Some(20.0));
        // Two seconds leak 20 units back: exactly enough.
        let c = plan.charge(at(2000)).unwrap();
        assert_eq!((c.remaining, c.throttled), (0.0, None));
        // A long pause fills the bucket to its capacity, never beyond.
        assert_eq!(plan.remaining(at(60_000)), Some(100.0));
        // An instant earlier than the last one leaks nothing (and never drains).
        assert_eq!(plan.remaining(at(1000)), Some(100.0));
        // Without a budget: no charge at all.
        let mut free = FaultPlan::new(FaultConfig::default(), 1);
        assert_eq!(free.charge(t0), None);
        assert_eq!(free.remaining(t0), None);
        assert_eq!(free.request_cost(), DEFAULT_REQUEST_COST);
        assert_eq!(plan.request_cost(), 40.0);
    }

    #[test]
    fn reconfiguring_keeps_the_level_unless_the_budget_changed() {
        let t0 = Instant::now();
        let mut plan = FaultPlan::new(budgeted(100.0, 0.0, 30.0), 1);
        plan.charge(t0);
        plan.charge(t0);
        assert_eq!(plan.remaining(t0), Some(40.0));
        let mut same = budgeted(100.0, 0.0, 30.0);
        same.script = vec![Fault::Status500];
        plan.reconfigure(same);
        assert_eq!(plan.remaining(t0), Some(40.0), "only the script changed");
        plan.reconfigure(budgeted(100.0, 0.0, 20.0));
        assert_eq!(plan.remaining(t0), Some(100.0), "a new budget starts full");
        plan.charge(t0);
        plan.refill();
        assert_eq!(plan.remaining(t0), Some(100.0), "a reset fills the bucket");
        plan.reconfigure(FaultConfig::default());
        assert_eq!(plan.remaining(t0), None);
    }

    #[test]
    fn a_throttled_request_leaves_the_script_and_the_rng_alone() {
        let cfg = FaultConfig {
            script: vec![Fault::Status503, Fault::Status500],
            latency_ms: Some((7, 7)),
            retry_after_secs: Some(9),
            budget_exhausted: BudgetAnswer::Forbidden,
            ..budgeted(50.0, 10.0, 30.0)
        };
        let mut plan = FaultPlan::new(cfg, 3);
        let t0 = Instant::now();
        let first = plan.admit(t0);
        assert_eq!(first.throttled(), None);
        assert_eq!(first.fault, Some(Fault::Status503));
        assert_eq!(first.delay, Duration::from_millis(7));
        assert_eq!(first.retry_after, 9);
        assert_eq!(first.request_cost, 30.0);
        assert_eq!(first.charge.unwrap().remaining, 20.0);
        let throttled = plan.admit(t0);
        assert_eq!(throttled.throttled(), Some(BudgetAnswer::Forbidden));
        assert_eq!(throttled.fault, None);
        assert_eq!(throttled.delay, Duration::ZERO);
        // The next request let through gets the next scripted fault.
        let later = plan.admit(t0 + Duration::from_secs(1));
        assert_eq!(later.throttled(), None);
        assert_eq!(later.fault, Some(Fault::Status500));
        assert_eq!(later.charge.unwrap().remaining, 0.0);
        // Without a budget, admit is decide.
        let mut a = FaultPlan::new(
            FaultConfig {
                script: vec![Fault::PhpNoticeHtml],
                ..FaultConfig::default()
            },
            5,
        );
        let adm = a.admit(t0);
        assert_eq!((adm.charge, adm.fault), (None, Some(Fault::PhpNoticeHtml)));
        assert_eq!(adm.throttled(), None);
    }
}
