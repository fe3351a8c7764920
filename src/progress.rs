//! How long work (import, reconcile, sync) reports what it does, without printing.
//!
//! An engine drives the work and pushes each finished item into a [`Progress`]
//! sink, the way ripgrep's searcher pushes matches into a `Sink`. The CLI
//! implements the sink with a progress bar or NDJSON lines, the desktop shell
//! with events, tests with [`Collect`]. An item answering [`Flow::Stop`] is how
//! Cancel reaches an engine: it finishes what is in flight, starts nothing new,
//! and still calls [`Progress::finish`].

use std::time::Duration;

use serde::Serialize;

/// Which long job is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    Import,
    Reconcile,
    Sync,
}

/// What an engine says when it starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Start {
    pub job: Job,
    /// A few words for people, e.g. the file being imported.
    pub title: String,
    /// How many items there will be, when known up front.
    pub total: Option<u64>,
}

/// Counts so far, with what a person wants to see: rate and time left.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Tally {
    /// Items finished, failed ones included.
    pub done: u64,
    /// Items that ended in failure.
    pub failed: u64,
    pub total: Option<u64>,
    #[serde(serialize_with = "as_secs")]
    pub elapsed: Duration,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Tally {
    /// Items not finished yet, when the total is known.
    pub fn remaining(&self) -> Option<u64> {
        self.total.map(|t| t.saturating_sub(self.done))
    }

    /// Items per second so far.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.done as f64 / secs } else { 0.0 }
    }

    /// Time left at the rate so far, when the total is known and work has begun.
    pub fn eta(&self) -> Option<Duration> {
        let left = self.remaining()?;
        let rate = self.rate();
        (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate))
    }
}

/// Whether the engine should go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Finish what is in flight, start nothing new.
    Stop,
}

/// Where an engine reports. `T` is the engine's item (an imported row's result,
/// a sent grade's result).
pub trait Progress<T: ?Sized> {
    fn begin(&mut self, _start: &Start) {}
    /// One item finished; the answer says whether to go on.
    fn item(&mut self, tally: &Tally, item: &T) -> Flow;
    /// Always called, also after a stop.
    fn finish(&mut self, _tally: &Tally) {}
}

/// Reports nowhere (callers that only want the final result).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl<T: ?Sized> Progress<T> for Silent {
    fn item(&mut self, _: &Tally, _: &T) -> Flow {
        Flow::Continue
    }
}

/// Keeps everything it is told (tests), optionally answering stop after some items.
#[derive(Debug, Clone)]
pub struct Collect<T> {
    pub started: Option<Start>,
    pub items: Vec<T>,
    pub tallies: Vec<Tally>,
    pub finished: Option<Tally>,
    /// Answer [`Flow::Stop`] once this many items arrived.
    pub stop_after: Option<usize>,
}

impl<T> Default for Collect<T> {
    fn default() -> Self {
        Self {
            started: None,
            items: Vec::new(),
            tallies: Vec::new(),
            finished: None,
            stop_after: None,
        }
    }
}

impl<T: Clone> Progress<T> for Collect<T> {
    fn begin(&mut self, start: &Start) {
        self.started = Some(start.clone());
    }

    fn item(&mut self, tally: &Tally, item: &T) -> Flow {
        self.items.push(item.clone());
        self.tallies.push(*tally);
        match self.stop_after {
            Some(n) if self.items.len() >= n => Flow::Stop,
            _ => Flow::Continue,
        }
    }

    fn finish(&mut self, tally: &Tally) {
        self.finished = Some(*tally);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_remaining_and_eta() {
        let t = Tally {
            done: 30,
            failed: 2,
            total: Some(90),
            elapsed: Duration::from_secs(10),
        };
        assert_eq!(t.remaining(), Some(60));
        assert!((t.rate() - 3.0).abs() < 1e-9);
        assert_eq!(t.eta(), Some(Duration::from_secs(20)));
        let fresh = Tally::default();
        assert_eq!(fresh.rate(), 0.0);
        assert_eq!(fresh.eta(), None, "no rate yet, no guess");
        let open = Tally { total: None, ..t };
        assert_eq!(open.eta(), None);
        let json = serde_json::to_value(t).unwrap();
        assert_eq!(json["elapsed"], 10.0);
    }

    #[test]
    fn a_collecting_sink_can_answer_stop() {
        let mut sink = Collect::<u32> {
            stop_after: Some(2),
            ..Collect::default()
        };
        let t = Tally::default();
        sink.begin(&Start {
            job: Job::Sync,
            title: "x".into(),
            total: Some(3),
        });
        assert_eq!(sink.item(&t, &1), Flow::Continue);
        assert_eq!(sink.item(&t, &2), Flow::Stop);
        sink.finish(&t);
        assert_eq!(sink.items, vec![1, 2]);
        assert!(sink.started.is_some() && sink.finished.is_some());
        assert_eq!(Silent.item(&t, &5u32), Flow::Continue);
    }
}
