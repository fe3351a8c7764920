//! Reproducible fault injection for the sandbox LMS.
//!
//! Faults come from two places: a *script* (the next N requests get these
//! faults, in order) for deterministic tests, and *rates* (each request gets a
//! fault with some probability) drawn from a seeded RNG, so a run with the same
//! seed and the same request order sees the same faults.

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

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
            other => {
                return Err(format!(
                    "unknown fault {other:?}: use 500, 503, 429, hang, reset, malformed or html"
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
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub fault: Option<Fault>,
    pub delay: Duration,
}

/// The live fault state.
#[derive(Debug)]
pub struct FaultPlan {
    script: VecDeque<Fault>,
    config: FaultConfig,
    rng: StdRng,
}

impl FaultPlan {
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        Self {
            script: config.script.iter().copied().collect(),
            config,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Replace the configuration (the script starts over; the RNG continues).
    pub fn reconfigure(&mut self, config: FaultConfig) {
        self.script = config.script.iter().copied().collect();
        self.config = config;
    }

    pub fn retry_after_secs(&self) -> u64 {
        self.config.retry_after_secs.unwrap_or(1)
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
}
