//! The batch writer: many facts in one transaction, for imports.
//!
//! Rows of facts are buffered and handed to a writer task a chunk at a time, so
//! the file is read while the ledger is written. For each chunk the writer writes
//! the places that are new (cached for the whole batch), reads the current grades
//! and targets of its pairs it does not know yet in one query each, decides every
//! row in order in memory (so a file that changes the same grade twice versions it
//! twice), and writes with multi-row statements. Which version is current, and
//! every touched grade's status, are settled once per pair when the batch commits,
//! in the same transaction: nothing is visible until [`Batch::commit`], and
//! [`Batch::rollback`] (or dropping the batch) leaves the ledger as it was.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use sqlx::AnyConnection;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::refresh_all;
use crate::error::{Error, Result};
use crate::model::{AttemptOperation, AttemptResult, Grade, NewGrade, OutcomeTarget, PlatformKind, Role};
use crate::store::{
    BatchCounts, EdxAssignment, EdxRecord, ExternalAttemptInsert, GradeInsert, GradeKey, LaunchInsert,
    ObservationInsert, ServiceKeyInsert, Store, TargetChange, Tx,
};

/// A course, as a fact names it.
#[derive(Debug, Clone, Default, PartialEq, Hash)]
pub struct ContextOwned {
    pub context_id: String,
    pub title: Option<String>,
    pub label: Option<String>,
}

/// An activity, as a fact names it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityOwned {
    pub resource_link_id: String,
    pub title: Option<String>,
    pub points_possible: Option<f64>,
    pub line_item_id: Option<String>,
    pub canvas_assignment_id: Option<String>,
}

/// A person, as a fact names them.
#[derive(Debug, Clone, Default, PartialEq, Hash)]
pub struct PersonOwned {
    pub lti_user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub person_sourcedid: Option<String>,
    pub canvas_user_id: Option<String>,
    pub role: Option<Role>,
}

/// Where a fact happened: a platform and as much of context, activity and person
/// as the source named.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlaceOwned {
    pub platform_id: i64,
    pub context: Option<ContextOwned>,
    pub activity: Option<ActivityOwned>,
    pub person: Option<PersonOwned>,
}

/// What a launch seen carried besides its place.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchInfo {
    /// When it happened (the capture or event time), RFC 3339.
    pub at: String,
    pub consumer_key: Option<String>,
    pub verified: bool,
    /// Why it is unverified, or how it was verified.
    pub note: Option<String>,
    pub locale: Option<String>,
    pub direction: Option<String>,
    /// `file:line`.
    pub source: String,
}

/// An attempt another system made (e.g. Open edX's failed send, from its log).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalAttempt {
    pub origin: String,
    pub operation: AttemptOperation,
    pub transport: PlatformKind,
    pub target: String,
    pub at: String,
    pub result: AttemptResult,
}

/// One fact an import learned.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// A person (and a course) seen, with no activity (a proxy-tool request).
    Seen { place: PlaceOwned },
    /// A launch, with the outcome target it carried, if any.
    Launch {
        place: PlaceOwned,
        launch: LaunchInfo,
        target: Option<OutcomeTarget>,
    },
    /// An outcome target learned (newest wins by `learned_at`).
    Target {
        place: PlaceOwned,
        target: OutcomeTarget,
    },
    /// A local grade observed, at the time the source says it was given.
    Grade {
        place: PlaceOwned,
        grade: NewGrade,
        observed_at: Option<String>,
    },
    /// What the LMS held (a gradebook export): on the 0–1 scale, `None` = no grade.
    LmsValue {
        place: PlaceOwned,
        score: Option<f64>,
        at: String,
        source: String,
    },
    /// An attempt another system made for the place's current grade.
    ExternalAttempt {
        place: PlaceOwned,
        attempt: ExternalAttempt,
    },
    /// An LTIAAS service key learned (the key itself is already in the keyring).
    ServiceKey {
        platform_id: i64,
        context_id: String,
        resource_link_id: String,
        ltiaas_platform_id: Option<String>,
        secret_ref: String,
        captured_at: String,
        source: String,
    },
    /// An Open edX `lti_provider` record.
    Edx(EdxRecord),
}

impl Fact {
    /// The platform the fact is about (`None` for an Open edX record, which
    /// belongs to no platform until it is resolved).
    pub fn platform_id(&self) -> Option<i64> {
        match self {
            Fact::Seen { place }
            | Fact::Launch { place, .. }
            | Fact::Target { place, .. }
            | Fact::Grade { place, .. }
            | Fact::LmsValue { place, .. }
            | Fact::ExternalAttempt { place, .. } => Some(place.platform_id),
            Fact::ServiceKey { platform_id, .. } => Some(*platform_id),
            Fact::Edx(_) => None,
        }
    }
}

/// The facts of one row of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFacts {
    pub line: u64,
    pub facts: Vec<Fact>,
}

/// What became of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    /// Something in the ledger changed.
    Imported,
    /// The ledger already held all of it (or something newer).
    Unchanged,
}

/// A row's outcome, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowResult {
    pub line: u64,
    pub outcome: RowOutcome,
    /// A grade older than the current version was kept out.
    pub older: bool,
}

/// How many current grades a batch remembers between chunks (beyond this the
/// memory is cleared and the ledger read again).
const CURRENT_CACHE: usize = 100_000;

/// How many pairs may wait for their status before the batch settles them (so a
/// file of any size imports in bounded memory).
const SETTLE_AT: usize = 100_000;

/// How many courses, activities and people a batch remembers (beyond this the
/// memory is cleared and places are written again when next seen).
const PLACES_CACHE: usize = 200_000;

/// What a batch keeps in memory at most (see the constants).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub current: usize,
    pub settle_at: usize,
    pub places: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            current: CURRENT_CACHE,
            settle_at: SETTLE_AT,
            places: PLACES_CACHE,
        }
    }
}

/// The id of a grade version written by this batch whose id was not read back.
const WRITTEN: i64 = -1;

/// How many rows a chunk holds before it is written.
const CHUNK_ROWS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resolved {
    context_ref: Option<i64>,
    activity_ref: Option<i64>,
    learner_ref: Option<i64>,
}

impl Resolved {
    fn key(&self) -> Option<GradeKey> {
        Some(GradeKey {
            activity_ref: self.activity_ref?,
            learner_ref: self.learner_ref?,
        })
    }
}

/// The state of a batch's transaction, owned by its writer task.
pub struct Writer {
    tx: Tx,
    batch_id: Option<i64>,
    places: Places,
    pending: Vec<RowFacts>,
    target_changes: Vec<TargetChange>,
    /// The current grade of each pair the batch read or wrote (id 0: added in
    /// the chunk being written; [`WRITTEN`]: added by an earlier chunk).
    current: HashMap<GradeKey, Grade>,
    /// Pairs whose status must be decided again before the batch commits.
    dirty: HashSet<GradeKey>,
    /// The newest version each pair got, not yet made current in the ledger
    /// (`current` holds it meanwhile).
    pending_current: HashMap<GradeKey, i64>,
    limits: Limits,
    /// The rows of the last chunk written, to be freed by the reading side.
    spent: Option<Vec<RowFacts>>,
    timing: Timing,
    /// Keyring references of service keys no row names any more once this batch
    /// commits (displaced by a newer capture, or captures that lost).
    unused_keyring_refs: Vec<String>,
}

/// Where a batch's writing time went (logged at debug level when it ends).
#[derive(Debug, Default)]
struct Timing {
    total: Duration,
    places: Duration,
    read: Duration,
    decide: Duration,
    write: Duration,
    status: Duration,
    commit: Duration,
}

impl Fact {
    /// Where the fact happened, for the facts that name a place.
    pub fn place(&self) -> Option<&PlaceOwned> {
        place_of(self)
    }
}

fn place_of(f: &Fact) -> Option<&PlaceOwned> {
    match f {
        Fact::Seen { place }
        | Fact::Launch { place, .. }
        | Fact::Target { place, .. }
        | Fact::Grade { place, .. }
        | Fact::LmsValue { place, .. }
        | Fact::ExternalAttempt { place, .. } => Some(place),
        Fact::ServiceKey { .. } | Fact::Edx(_) => None,
    }
}

/// Two targets say the same thing (when and where from aside).
fn same_target(a: &OutcomeTarget, b: &OutcomeTarget) -> bool {
    a.lis_result_sourcedid == b.lis_result_sourcedid
        && a.lis_outcome_service_url == b.lis_outcome_service_url
        && a.ext_outcome_data_values_accepted == b.ext_outcome_data_values_accepted
        && a.ext_result_total_score_accepted == b.ext_result_total_score_accepted
        && a.ext_submitted_at_accepted == b.ext_submitted_at_accepted
        && a.ext_prioritize_non_tool_grade_accepted == b.ext_prioritize_non_tool_grade_accepted
        && a.ext_needs_additional_review_accepted == b.ext_needs_additional_review_accepted
        && a.service_key_ref == b.service_key_ref
        && a.unavailable_reason == b.unavailable_reason
}

/// A grade value equals the current version's.
fn same_grade(cur: &Grade, g: &NewGrade) -> bool {
    cur.score_given == g.score_given
        && cur.score_maximum == g.score_maximum
        && cur.comment == g.comment
        && cur.result_text == g.result_text
        && cur.result_url == g.result_url
        && cur.submitted_at == g.submitted_at
}

/// `new` says something `have` does not.
fn adds<T: PartialEq>(new: &Option<T>, have: &Option<T>) -> bool {
    new.is_some() && new != have
}

/// Take what `from` says over what `into` holds.
fn take<T: Clone>(into: &mut Option<T>, from: &Option<T>) {
    if from.is_some() {
        into.clone_from(from);
    }
}

/// A role a source gave: `unknown` says nothing (it never replaces a known role).
fn known_role(r: Option<Role>) -> Option<Role> {
    r.filter(|r| *r != Role::Unknown)
}

impl ContextOwned {
    fn adds_to(&self, have: &ContextOwned) -> bool {
        adds(&self.title, &have.title) || adds(&self.label, &have.label)
    }

    fn take_from(&mut self, o: &ContextOwned) {
        take(&mut self.title, &o.title);
        take(&mut self.label, &o.label);
    }
}

impl ActivityOwned {
    fn adds_to(&self, have: &ActivityOwned) -> bool {
        adds(&self.title, &have.title)
            || adds(&self.points_possible, &have.points_possible)
            || adds(&self.line_item_id, &have.line_item_id)
            || adds(&self.canvas_assignment_id, &have.canvas_assignment_id)
    }

    fn take_from(&mut self, o: &ActivityOwned) {
        take(&mut self.title, &o.title);
        take(&mut self.points_possible, &o.points_possible);
        take(&mut self.line_item_id, &o.line_item_id);
        take(&mut self.canvas_assignment_id, &o.canvas_assignment_id);
    }
}

impl PersonOwned {
    fn adds_to(&self, have: &PersonOwned) -> bool {
        adds(&self.name, &have.name)
            || adds(&self.email, &have.email)
            || adds(&self.person_sourcedid, &have.person_sourcedid)
            || adds(&self.canvas_user_id, &have.canvas_user_id)
            || adds(&known_role(self.role), &have.role)
    }

    fn take_from(&mut self, o: &PersonOwned) {
        take(&mut self.name, &o.name);
        take(&mut self.email, &o.email);
        take(&mut self.person_sourcedid, &o.person_sourcedid);
        take(&mut self.canvas_user_id, &o.canvas_user_id);
        take(&mut self.role, &known_role(o.role));
    }
}

/// What the batch has written (or read back) of courses, activities and people:
/// their ids and every name the ledger holds for them, so a place is written only
/// when it is new or says something new.
#[derive(Default)]
struct Places {
    contexts: Keyed<ContextOwned>,
    activities: Keyed<ActivityOwned>,
    people: Keyed<PersonOwned>,
}

impl Places {
    fn len(&self) -> usize {
        self.contexts.len() + self.activities.len() + self.people.len()
    }
}

/// Written places by (platform or course id, name): looked up with a borrowed
/// name, since every fact of every row is looked up.
struct Keyed<T>(HashMap<i64, HashMap<String, (i64, T)>>);

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Self(HashMap::default())
    }
}

impl<T> Keyed<T> {
    fn len(&self) -> usize {
        self.0.values().map(HashMap::len).sum()
    }

    fn get(&self, under: i64, name: &str) -> Option<&(i64, T)> {
        self.0.get(&under)?.get(name)
    }

    fn id(&self, under: i64, name: &str) -> Option<i64> {
        self.get(under, name).map(|(id, _)| *id)
    }

    fn entry(&mut self, (under, name): (i64, String), new: impl FnOnce() -> (i64, T)) -> &mut (i64, T) {
        self.0.entry(under).or_default().entry(name).or_insert_with(new)
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Places to write, in the order the file first named them (so ids, and with
/// them the listing's order of learners, follow the file).
struct Ordered<T> {
    index: HashMap<(i64, String), usize>,
    items: Vec<((i64, String), T)>,
}

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Self {
            index: HashMap::default(),
            items: Vec::new(),
        }
    }
}

impl<T> Ordered<T> {
    fn add(&mut self, key: (i64, String), v: &T, merge: impl FnOnce(&mut T, &T), new: impl FnOnce(&T) -> T) {
        match self.index.get(&key) {
            Some(i) => merge(&mut self.items[*i].1, v),
            None => {
                self.index.insert(key.clone(), self.items.len());
                self.items.push((key, new(v)));
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&(i64, String), &T)> {
        self.items.iter().map(|(k, v)| (k, v))
    }
}

impl<T> IntoIterator for Ordered<T> {
    type Item = ((i64, String), T);
    type IntoIter = std::vec::IntoIter<((i64, String), T)>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// Write the places of `rows` that are new or say something new (one multi-row
/// upsert per kind), marking the grades of people whose role changed as dirty;
/// then resolve every fact's place from the cache.
async fn resolve_places(
    conn: &mut AnyConnection,
    cache: &mut Places,
    rows: &[RowFacts],
    dirty: &mut HashSet<GradeKey>,
) -> Result<Vec<Vec<Option<Resolved>>>> {
    use crate::store::{ActivityUpsert, ContextUpsert, LearnerUpsert};
    let places = || rows.iter().flat_map(|r| r.facts.iter().filter_map(place_of));

    // Courses.
    let mut writes: Ordered<ContextOwned> = Ordered::default();
    for p in places() {
        let Some(c) = &p.context else { continue };
        if cache
            .contexts
            .get(p.platform_id, &c.context_id)
            .is_none_or(|(_, have)| c.adds_to(have))
        {
            let key = (p.platform_id, c.context_id.clone());
            writes.add(key, c, ContextOwned::take_from, ContextOwned::clone);
        }
    }
    if !writes.is_empty() {
        let ups: Vec<ContextUpsert<'_>> = writes
            .iter()
            .map(|((pid, _), c)| ContextUpsert {
                platform_id: *pid,
                context_id: &c.context_id,
                title: c.title.as_deref(),
                label: c.label.as_deref(),
            })
            .collect();
        let ids = Store::upsert_contexts(conn, &ups).await?;
        for (key, c) in writes {
            let id = *ids
                .get(&key)
                .ok_or_else(|| Error::internal("a course was not written"))?;
            let e = cache.contexts.entry(key, || (id, c.clone()));
            e.1.take_from(&c);
        }
    }
    let context_ref = |cache: &Places, p: &PlaceOwned| -> Option<i64> {
        let c = p.context.as_ref()?;
        cache.contexts.id(p.platform_id, &c.context_id)
    };

    // Activities.
    let mut writes: Ordered<ActivityOwned> = Ordered::default();
    for p in places() {
        let (Some(ctx), Some(a)) = (context_ref(cache, p), &p.activity) else {
            continue;
        };
        if cache
            .activities
            .get(ctx, &a.resource_link_id)
            .is_none_or(|(_, have)| a.adds_to(have))
        {
            let key = (ctx, a.resource_link_id.clone());
            writes.add(key, a, ActivityOwned::take_from, ActivityOwned::clone);
        }
    }
    if !writes.is_empty() {
        let ups: Vec<ActivityUpsert<'_>> = writes
            .iter()
            .map(|((ctx, _), a)| ActivityUpsert {
                context_ref: *ctx,
                resource_link_id: &a.resource_link_id,
                title: a.title.as_deref(),
                points_possible: a.points_possible,
                line_item_id: a.line_item_id.as_deref(),
                canvas_assignment_id: a.canvas_assignment_id.as_deref(),
            })
            .collect();
        let ids = Store::upsert_activities(conn, &ups).await?;
        for (key, a) in writes {
            let id = *ids
                .get(&key)
                .ok_or_else(|| Error::internal("an activity was not written"))?;
            let e = cache.activities.entry(key, || (id, a.clone()));
            e.1.take_from(&a);
        }
    }

    // People.
    let mut writes: Ordered<PersonOwned> = Ordered::default();
    for p in places() {
        let Some(u) = &p.person else { continue };
        if cache
            .people
            .get(p.platform_id, &u.lti_user_id)
            .is_none_or(|(_, have)| u.adds_to(have))
        {
            let key = (p.platform_id, u.lti_user_id.clone());
            writes.add(key, u, PersonOwned::take_from, |u| PersonOwned {
                role: known_role(u.role),
                ..u.clone()
            });
        }
    }
    if !writes.is_empty() {
        let ups: Vec<LearnerUpsert<'_>> = writes
            .iter()
            .map(|((pid, _), u)| LearnerUpsert {
                platform_id: *pid,
                lti_user_id: &u.lti_user_id,
                name: u.name.as_deref(),
                email: u.email.as_deref(),
                person_sourcedid: u.person_sourcedid.as_deref(),
                canvas_user_id: u.canvas_user_id.as_deref(),
                role: u.role,
            })
            .collect();
        let written = Store::upsert_learners(conn, &ups).await?;
        for (key, u) in writes {
            let w = *written
                .get(&key)
                .ok_or_else(|| Error::internal("a person was not written"))?;
            if w.role_changed {
                dirty.extend(Store::grade_keys_of_learner(conn, w.id).await?);
            }
            let e = cache.people.entry(key, || (w.id, u.clone()));
            e.1.take_from(&u);
        }
    }

    Ok(rows
        .iter()
        .map(|row| {
            row.facts
                .iter()
                .map(|f| {
                    place_of(f).map(|p| {
                        let context_ref = context_ref(cache, p);
                        Resolved {
                            context_ref,
                            activity_ref: match (context_ref, &p.activity) {
                                (Some(ctx), Some(a)) => cache.activities.id(ctx, &a.resource_link_id),
                                _ => None,
                            },
                            learner_ref: p
                                .person
                                .as_ref()
                                .and_then(|u| cache.people.id(p.platform_id, &u.lti_user_id)),
                        }
                    })
                })
                .collect()
        })
        .collect())
}

/// A pending row's effect, known only after the chunk's writes.
enum Late {
    /// The row changed something for sure.
    Changed,
    /// The row's attempt `i` (index into the chunk's attempts) may or may not be new.
    Attempt(usize),
}

impl Writer {
    fn new(tx: Tx, batch_id: Option<i64>, limits: Limits) -> Self {
        Self {
            limits,
            spent: None,
            tx,
            batch_id,
            places: Places::default(),
            pending: Vec::new(),
            target_changes: Vec::new(),
            current: HashMap::default(),
            dirty: HashSet::default(),
            pending_current: HashMap::default(),
            timing: Timing::default(),
            unused_keyring_refs: Vec::new(),
        }
    }

    /// Write what is pending; returns the outcomes of those rows.
    async fn flush(&mut self) -> Result<Vec<RowResult>> {
        let started = Instant::now();
        let out = self.flush_chunk().await;
        self.timing.total += started.elapsed();
        out
    }

    async fn flush_chunk(&mut self) -> Result<Vec<RowResult>> {
        let rows = std::mem::take(&mut self.pending);
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut dirty = std::mem::take(&mut self.dirty);

        // 1. Places: only those new to the batch or saying something new are written.
        let t = Instant::now();
        let resolved = resolve_places(&mut self.tx, &mut self.places, &rows, &mut dirty).await?;
        self.timing.places += t.elapsed();
        let t = Instant::now();

        // 2. What the ledger holds for the chunk's pairs, one query each.
        let mut grade_keys = Vec::new();
        let mut target_keys = Vec::new();
        let mut seen_keys = Vec::new();
        for (row, per_fact) in rows.iter().zip(&resolved) {
            for (f, r) in row.facts.iter().zip(per_fact) {
                let Some(key) = r.and_then(|r| r.key()) else {
                    continue;
                };
                match f {
                    Fact::Grade { .. } | Fact::ExternalAttempt { .. } => grade_keys.push(key),
                    Fact::Target { .. } | Fact::Launch { target: Some(_), .. } => target_keys.push(key),
                    Fact::LmsValue { .. } => seen_keys.push(key),
                    _ => {}
                }
            }
        }
        dedup(&mut grade_keys);
        dedup(&mut target_keys);
        dedup(&mut seen_keys);
        // The current grades of pairs this batch already read or wrote are known.
        if self.current.len() > self.limits.current {
            self.write_current().await?;
            self.current.clear();
        }
        grade_keys.retain(|k| !self.current.contains_key(k));
        let read = Store::current_grades_of(&mut self.tx, &grade_keys).await?;
        self.current.extend(read);
        // Taken for the chunk (and put back below).
        let mut current = std::mem::take(&mut self.current);
        let mut targets = Store::targets_of(&mut self.tx, &target_keys).await?;
        let mut observed = Store::latest_observations_of(&mut self.tx, &seen_keys).await?;

        self.timing.read += t.elapsed();
        let t = Instant::now();

        // 3. Decide every row in order, in memory.
        let mut grade_rows: Vec<(usize, GradeKey, i64, &NewGrade, Option<&str>)> = Vec::new();
        let mut target_rows: Vec<(GradeKey, OutcomeTarget)> = Vec::new();
        let mut obs_rows: Vec<ObservationInsert<'_>> = Vec::new();
        let mut attempt_rows: Vec<(usize, GradeKey, i64, bool, &ExternalAttempt)> = Vec::new();
        let mut launch_rows: Vec<(usize, LaunchInsert<'_>)> = Vec::new();
        let mut late: Vec<Vec<Late>> = (0..rows.len()).map(|_| Vec::new()).collect();
        let mut older = vec![false; rows.len()];
        // Versions added in this chunk but not yet written: (key → version).
        let mut new_versions: HashMap<GradeKey, i64> = HashMap::default();
        for (i, (row, per_fact)) in rows.iter().zip(&resolved).enumerate() {
            for (f, r) in row.facts.iter().zip(per_fact) {
                match f {
                    Fact::Seen { .. } => {}
                    Fact::Launch {
                        launch,
                        target,
                        place,
                    } => {
                        let r = r.ok_or_else(|| Error::internal("a launch without its place"))?;
                        let Some(learner_ref) = r.learner_ref else {
                            return Err(Error::internal("a launch without its person"));
                        };
                        launch_rows.push((
                            i,
                            LaunchInsert {
                                context_ref: r.context_ref,
                                activity_ref: r.activity_ref,
                                learner_ref,
                                role: place
                                    .person
                                    .as_ref()
                                    .and_then(|p| p.role)
                                    .unwrap_or(Role::Unknown),
                                consumer_key: launch.consumer_key.as_deref(),
                                launched_at: &launch.at,
                                source: &launch.source,
                                verified: launch.verified,
                                verification_note: launch.note.as_deref(),
                                locale: launch.locale.as_deref(),
                                direction: launch.direction.as_deref(),
                                batch_ref: self.batch_id,
                            },
                        ));
                        if let (Some(t), Some(key)) = (target, r.key())
                            && self.learn_target(key, t, &mut targets, &mut target_rows)
                        {
                            dirty.insert(key);
                            late[i].push(Late::Changed);
                        }
                    }
                    Fact::Target { target, .. } => {
                        let key = r
                            .and_then(|r| r.key())
                            .ok_or_else(|| Error::internal("a target without its activity and person"))?;
                        if self.learn_target(key, target, &mut targets, &mut target_rows) {
                            dirty.insert(key);
                            late[i].push(Late::Changed);
                        }
                    }
                    Fact::Grade {
                        grade, observed_at, ..
                    } => {
                        let key = r
                            .and_then(|r| r.key())
                            .ok_or_else(|| Error::internal("a grade without its activity and person"))?;
                        crate::store::validate_grade(grade)?;
                        let cur = current.get(&key);
                        let unchanged = cur.is_some_and(|c| same_grade(c, grade));
                        let is_older =
                            match (cur.and_then(|c| c.observed_at.as_deref()), observed_at.as_deref()) {
                                (Some(have), Some(new)) => new < have,
                                _ => false,
                            };
                        if unchanged {
                            continue;
                        }
                        if is_older {
                            older[i] = true;
                            continue;
                        }
                        let version = new_versions
                            .get(&key)
                            .copied()
                            .or(cur.map(|c| c.version))
                            .unwrap_or(0)
                            + 1;
                        new_versions.insert(key, version);
                        grade_rows.push((i, key, version, grade, observed_at.as_deref()));
                        // Later rows of this chunk compare against this value.
                        current.insert(
                            key,
                            Grade {
                                id: 0,
                                activity_ref: key.activity_ref,
                                learner_ref: key.learner_ref,
                                version,
                                score_given: grade.score_given,
                                score_maximum: grade.score_maximum,
                                comment: grade.comment.clone(),
                                result_text: grade.result_text.clone(),
                                result_url: grade.result_url.clone(),
                                submitted_at: grade.submitted_at.clone(),
                                recorded_at: String::new(),
                                source: grade.source.clone(),
                                observed_at: observed_at.clone(),
                            },
                        );
                        dirty.insert(key);
                        late[i].push(Late::Changed);
                    }
                    Fact::LmsValue {
                        score, at, source, ..
                    } => {
                        let key = r
                            .and_then(|r| r.key())
                            .ok_or_else(|| Error::internal("an LMS value without its activity and person"))?;
                        let same = observed
                            .get(&key)
                            .is_some_and(|o| o.score == *score && o.at == *at);
                        if same {
                            continue;
                        }
                        observed.insert(
                            key,
                            crate::model::Observation {
                                score: *score,
                                at: at.clone(),
                                source: source.clone(),
                            },
                        );
                        obs_rows.push(ObservationInsert {
                            key,
                            score: *score,
                            observed_at: at,
                            source,
                            batch_ref: self.batch_id,
                        });
                        dirty.insert(key);
                        late[i].push(Late::Changed);
                    }
                    Fact::ExternalAttempt { attempt, .. } => {
                        let key = r
                            .and_then(|r| r.key())
                            .ok_or_else(|| Error::internal("an attempt without its activity and person"))?;
                        // An attempt is about its row's grade: when that grade was kept
                        // out as older than the ledger's, so is the attempt (it was
                        // recorded with its own version, or is history of a value
                        // the ledger no longer holds).
                        if older[i] {
                            continue;
                        }
                        if let Some(cur) = current.get(&key) {
                            late[i].push(Late::Attempt(attempt_rows.len()));
                            // In-chunk versions carry id 0 until written.
                            let existed = cur.id != 0;
                            attempt_rows.push((i, key, cur.version, existed, attempt));
                            dirty.insert(key);
                        }
                    }
                    Fact::ServiceKey {
                        platform_id,
                        context_id,
                        resource_link_id,
                        ltiaas_platform_id,
                        secret_ref,
                        captured_at,
                        source,
                    } => {
                        let upsert = Store::upsert_service_key(
                            &mut self.tx,
                            &ServiceKeyInsert {
                                platform_id: *platform_id,
                                context_id,
                                resource_link_id,
                                ltiaas_platform_id: ltiaas_platform_id.as_deref(),
                                secret_ref,
                                captured_at,
                                source,
                            },
                        )
                        .await?;
                        self.unused_keyring_refs.extend(upsert.unused_ref);
                        if upsert.written {
                            if let Some(activity) = Store::activity_ref_of(
                                &mut self.tx,
                                *platform_id,
                                context_id,
                                resource_link_id,
                            )
                            .await?
                            {
                                dirty.extend(Store::grade_keys_of_activity(&mut self.tx, activity).await?);
                            }
                            late[i].push(Late::Changed);
                        }
                    }
                    Fact::Edx(rec) => {
                        Store::upsert_edx_record(&mut self.tx, rec).await?;
                        late[i].push(Late::Changed);
                    }
                }
            }
        }

        self.timing.decide += t.elapsed();
        let t = Instant::now();

        // 4. The writes, as multi-row statements.
        let inserts: Vec<GradeInsert<'_>> = grade_rows
            .iter()
            .map(|(_, key, version, grade, observed_at)| GradeInsert {
                key: *key,
                version: *version,
                grade,
                observed_at: *observed_at,
                batch_ref: self.batch_id,
            })
            .collect();
        Store::insert_grades(&mut self.tx, &inserts).await?;
        let mut latest: HashMap<GradeKey, i64> = HashMap::default();
        for ins in &inserts {
            let v = latest.entry(ins.key).or_insert(ins.version);
            *v = (*v).max(ins.version);
        }
        // Which version is current is written once per pair, when the batch settles.
        for (k, v) in latest {
            self.pending_current.insert(k, v);
        }
        Store::set_outcome_targets(&mut self.tx, &target_rows).await?;
        Store::insert_observations(&mut self.tx, &obs_rows).await?;
        let attempt_inserts: Vec<ExternalAttemptInsert<'_>> = attempt_rows
            .iter()
            .map(|(_, key, version, existed, a)| ExternalAttemptInsert {
                key: *key,
                version: *version,
                version_existed: *existed,
                origin: &a.origin,
                operation: a.operation,
                transport: a.transport,
                target: &a.target,
                at: &a.at,
                result: &a.result,
                batch_ref: self.batch_id,
            })
            .collect();
        let attempts_new = Store::insert_external_attempts(&mut self.tx, &attempt_inserts).await?;
        let launch_inserts: Vec<LaunchInsert<'_>> = launch_rows.iter().map(|(_, l)| l.clone()).collect();
        let launches_new = Store::insert_launches(&mut self.tx, &launch_inserts).await?;
        for ((i, _), new) in launch_rows.iter().zip(launches_new) {
            if new {
                late[*i].push(Late::Changed);
            }
        }
        if let Some(batch) = self.batch_id {
            Store::record_target_changes(&mut self.tx, batch, &self.target_changes).await?;
        }
        self.target_changes.clear();

        self.timing.write += t.elapsed();

        // Versions written in this chunk are in the ledger now.
        self.current = current;
        for g in self.current.values_mut() {
            if g.id == 0 {
                g.id = WRITTEN;
            }
        }
        // 5. Statuses are decided once per pair, when the batch ends (see `settle`),
        // or sooner when so many pairs wait that memory would grow with the file.
        self.dirty = dirty;
        if self.dirty.len() >= self.limits.settle_at {
            self.settle().await?;
        }
        if self.places.len() >= self.limits.places {
            self.places = Places::default();
        }

        let results: Vec<RowResult> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let changed = late[i].iter().any(|l| match l {
                    Late::Changed => true,
                    Late::Attempt(j) => attempts_new[*j],
                });
                RowResult {
                    line: row.line,
                    outcome: if changed {
                        RowOutcome::Imported
                    } else {
                        RowOutcome::Unchanged
                    },
                    older: older[i],
                }
            })
            .collect();
        // Freed by the reading side, which allocated them and has time to spare.
        self.spent = Some(rows);
        Ok(results)
    }

    /// Newest target wins (by `learned_at`); the same target again is no change.
    /// Returns whether the target was (to be) written.
    fn learn_target(
        &mut self,
        key: GradeKey,
        t: &OutcomeTarget,
        known: &mut HashMap<GradeKey, OutcomeTarget>,
        out: &mut Vec<(GradeKey, OutcomeTarget)>,
    ) -> bool {
        let previous = known.get(&key);
        if let Some(p) = previous {
            if same_target(p, t) || p.learned_at > t.learned_at {
                return false;
            }
            // A target without a sourcedid never replaces one that has it.
            if t.lis_result_sourcedid.is_none()
                && t.service_key_ref.is_none()
                && p.lis_result_sourcedid.is_some()
            {
                return false;
            }
        }
        self.target_changes.push(TargetChange {
            key,
            previous: previous.cloned(),
        });
        known.insert(key, t.clone());
        out.push((key, t.clone()));
        true
    }

    /// Give a stand-in learner its real LTI user id (see [`Store::rename_learner`]).
    async fn rename_learner(&mut self, platform_id: i64, from: &str, to: &str) -> Result<bool> {
        let renamed = Store::rename_learner(&mut self.tx, platform_id, from, to).await?;
        if renamed {
            self.write_current().await?;
            self.current.clear();
            // Cached people still name the stand-in.
            self.places.people.clear();
        }
        Ok(renamed)
    }

    /// Make the newest versions current in the ledger.
    async fn write_current(&mut self) -> Result<()> {
        let currents: Vec<(GradeKey, i64)> = std::mem::take(&mut self.pending_current).into_iter().collect();
        Store::set_current_grades(&mut self.tx, &currents).await
    }

    /// Decide the status of every pair the batch touched (once per pair, however
    /// many of its rows touched it), in the batch's transaction.
    async fn settle(&mut self) -> Result<()> {
        let t = Instant::now();
        self.write_current().await?;
        let dirty: Vec<GradeKey> = std::mem::take(&mut self.dirty).into_iter().collect();
        for chunk in dirty.chunks(4096) {
            refresh_all(&mut self.tx, chunk.to_vec()).await?;
        }
        self.timing.status += t.elapsed();
        Ok(())
    }

    /// Make everything visible.
    async fn commit(mut self) -> Result<()> {
        self.settle().await?;
        let t = Instant::now();
        self.tx.commit().await?;
        self.timing.commit = t.elapsed();
        tracing::debug!(timing = ?self.timing, "batch written");
        Ok(())
    }
}

fn dedup(keys: &mut Vec<GradeKey>) {
    let mut seen = HashSet::with_capacity_and_hasher(keys.len(), Default::default());
    keys.retain(|k| seen.insert(*k));
}

/// Work for the writer task, run in order after the chunks sent before it.
type Job = Box<dyn for<'w> FnOnce(&'w mut Writer) -> BoxFuture<'w, ()> + Send>;

enum Cmd {
    Rows(Vec<RowFacts>),
    Job(Job),
}

/// What the writer sends back: a chunk's outcomes, and the chunk itself to free.
enum Written {
    Outcomes(Result<Vec<RowResult>>),
    Spent(#[allow(dead_code)] Vec<RowFacts>),
}

/// Chunks (and jobs) queued for the writer before `push` waits: the file is read
/// at most this far ahead of the ledger.
const QUEUED_CHUNKS: usize = 2;

/// Many facts in one transaction (see the module docs): a handle on the writer
/// task that owns the transaction.
pub struct Batch {
    batch_id: Option<i64>,
    pending: Vec<RowFacts>,
    cmds: Option<mpsc::Sender<Cmd>>,
    results: mpsc::UnboundedReceiver<Written>,
    task: Option<JoinHandle<Writer>>,
}

async fn run_writer(
    mut w: Writer,
    mut cmds: mpsc::Receiver<Cmd>,
    results: mpsc::UnboundedSender<Written>,
) -> Writer {
    while let Some(cmd) = cmds.recv().await {
        match cmd {
            Cmd::Rows(rows) => {
                w.pending = rows;
                let _ = results.send(Written::Outcomes(w.flush().await));
                if let Some(rows) = w.spent.take() {
                    let _ = results.send(Written::Spent(rows));
                }
            }
            Cmd::Job(job) => job(&mut w).await,
        }
    }
    w
}

fn writer_gone() -> Error {
    Error::internal("the import's ledger writer stopped")
}

impl Batch {
    pub(super) fn new(tx: Tx, batch_id: Option<i64>, limits: Limits) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::channel(QUEUED_CHUNKS);
        let (res_tx, res_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_writer(Writer::new(tx, batch_id, limits), cmd_rx, res_tx));
        Self {
            batch_id,
            pending: Vec::new(),
            cmds: Some(cmd_tx),
            results: res_rx,
            task: Some(task),
        }
    }

    /// The import batch the changes are recorded under.
    pub fn batch_id(&self) -> Option<i64> {
        self.batch_id
    }

    async fn send(&mut self, cmd: Cmd) -> Result<()> {
        let cmds = self.cmds.as_ref().ok_or_else(writer_gone)?;
        cmds.send(cmd).await.map_err(|_| writer_gone())
    }

    /// The outcomes the writer has reported so far (the first error, if any).
    fn written(&mut self) -> Result<Vec<RowResult>> {
        let mut out = Vec::new();
        while let Ok(w) = self.results.try_recv() {
            if let Written::Outcomes(r) = w {
                out.extend(r?);
            }
        }
        Ok(out)
    }

    /// Add a row; returns the outcomes of the rows written so far (a chunk at a
    /// time, while later rows are read).
    pub async fn push(&mut self, row: RowFacts) -> Result<Vec<RowResult>> {
        self.pending.push(row);
        if self.pending.len() >= CHUNK_ROWS {
            let rows = std::mem::take(&mut self.pending);
            self.send(Cmd::Rows(rows)).await?;
        }
        self.written()
    }

    /// Run `f` on the writer once everything pushed before is written.
    async fn call<T: Send + 'static>(
        &mut self,
        f: impl for<'w> FnOnce(&'w mut Writer) -> BoxFuture<'w, Result<T>> + Send + 'static,
    ) -> Result<T> {
        if !self.pending.is_empty() {
            let rows = std::mem::take(&mut self.pending);
            self.send(Cmd::Rows(rows)).await?;
        }
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |w: &mut Writer| {
            Box::pin(async move {
                let _ = reply.send(f(w).await);
            })
        });
        self.send(Cmd::Job(job)).await?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Write everything pushed; returns the outcomes not reported yet.
    pub async fn flush(&mut self) -> Result<Vec<RowResult>> {
        self.call(|_| Box::pin(async { Ok(()) })).await?;
        self.written()
    }

    /// Read from the batch's transaction (so rows pushed before are seen), e.g.
    /// what a parser needs to join a file against the ledger.
    pub async fn read<T: Send + 'static>(
        &mut self,
        f: impl for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    ) -> Result<T> {
        self.call(move |w: &mut Writer| f(&mut w.tx)).await
    }

    /// The graded assignments of the Open edX records (see [`Store::edx_assignments`]),
    /// those of this batch included; and the outcomes of the rows written meanwhile.
    pub async fn edx_assignments(
        &mut self,
        resolved_only: bool,
    ) -> Result<(Vec<EdxAssignment>, Vec<RowResult>)> {
        let found = self
            .read(move |c| Box::pin(Store::edx_assignments(c, resolved_only)))
            .await?;
        Ok((found, self.written()?))
    }

    /// Give a stand-in learner its real LTI user id (see [`Store::rename_learner`]).
    pub async fn rename_learner(&mut self, platform_id: i64, from: &str, to: &str) -> Result<bool> {
        let (from, to) = (from.to_string(), to.to_string());
        self.call(move |w: &mut Writer| {
            Box::pin(async move { w.rename_learner(platform_id, &from, &to).await })
        })
        .await
    }

    /// Keep the rows an import rejected or skipped (with the batch; not in a dry run).
    pub async fn save_issues(&mut self, issues: &[crate::model::RowIssue]) -> Result<()> {
        let Some(id) = self.batch_id else {
            return Ok(());
        };
        let issues = issues.to_vec();
        self.read(move |c| Box::pin(async move { Store::insert_issues(c, id, &issues).await }))
            .await
    }

    /// Finish the import batch's own record inside the transaction.
    pub async fn finish_record(
        &mut self,
        status: &str,
        counts: &BatchCounts,
        notes: &[String],
    ) -> Result<()> {
        let Some(id) = self.batch_id else {
            return Ok(());
        };
        let (status, counts, notes) = (status.to_string(), counts.clone(), notes.to_vec());
        self.read(move |c| {
            Box::pin(async move { Store::finish_batch(c, id, &status, &counts, &notes).await })
        })
        .await
    }

    /// Record what is known of the imported file once it is read: its hash, and
    /// the one platform its rows were about.
    pub async fn set_file(&mut self, hash: String, platform_ref: Option<i64>) -> Result<()> {
        let Some(id) = self.batch_id else {
            return Ok(());
        };
        self.read(move |c| Box::pin(async move { Store::set_batch_file(c, id, &hash, platform_ref).await }))
            .await
    }

    /// Stop the writer once everything pushed is written; the outcomes not
    /// reported yet, and the writer (`None` after a writer failure, whose error
    /// this returns).
    async fn close(&mut self) -> Result<(Vec<RowResult>, Writer)> {
        if !self.pending.is_empty() {
            let rows = std::mem::take(&mut self.pending);
            self.send(Cmd::Rows(rows)).await?;
        }
        drop(self.cmds.take());
        let task = self.task.take().ok_or_else(writer_gone)?;
        let w = task
            .await
            .map_err(|e| Error::internal(format!("the import's ledger writer failed: {e}")))?;
        let results = self.written()?;
        Ok((results, w))
    }

    /// Write what is pending and make everything visible.
    pub async fn commit(self) -> Result<Vec<RowResult>> {
        Ok(self.commit_returning_unused_keys().await?.0)
    }

    /// [`Batch::commit`], also returning the keyring references of service keys that
    /// no row names any more now that the batch is committed: the caller (who may use
    /// the keyring; intake does not) deletes their entries.
    pub async fn commit_returning_unused_keys(mut self) -> Result<(Vec<RowResult>, Vec<String>)> {
        let (results, mut w) = self.close().await?;
        let unused = std::mem::take(&mut w.unused_keyring_refs);
        w.commit().await?;
        Ok((results, unused))
    }

    /// Write what is pending, then undo everything (a dry run's last step).
    pub async fn rollback(mut self) -> Result<Vec<RowResult>> {
        let (results, w) = self.close().await?;
        tracing::debug!(timing = ?w.timing, "batch written, then rolled back");
        w.tx.rollback().await?;
        Ok(results)
    }
}
