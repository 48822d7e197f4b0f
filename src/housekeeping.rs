//! Housekeeping: the periodic jobs that end what would otherwise go on forever. Each runs on a
//! `cron` schedule, on one worker at a time per database (whichever replica claims it first;
//! another takes over within a minute when that one dies):
//!
//! - `expire`: a shipment the carrier never finds, or that stops moving for good, ends as
//!   `expired`: polling stops and the merchant is told (a log line and a notice to list).
//! - `prune`: poll errors are kept for a while, not forever, and a finished shipment's personal
//!   data (the customer's address, name and postal code, carriers' words naming who took the
//!   parcel) is erased after a while, keeping anonymous delivery statistics.

use jiff::{SignedDuration, Timestamp};
use std::str::FromStr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::HousekeepingConfig;
use crate::store::{Store, StoreError};

/// How long a running job stays its worker's without a renewal; it is renewed every third of
/// that, so a dead worker's job is taken over within this long.
const JOB_LEASE: Duration = Duration::from_secs(60);

/// Longest (real) sleep between two looks at the schedule: a job a dead replica held is
/// picked up within about this long after its lease runs out.
const MAX_IDLE: Duration = Duration::from_secs(20);

/// Shipments erased in one transaction.
const ERASE_SLICE: u32 = 500;

/// One of the periodic jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Give up on shipments the carrier never finds or that stopped moving.
    Expire,
    /// Delete what is kept only for a while: poll errors, and finished shipments' personal data.
    Prune,
}

impl Job {
    pub const ALL: [Job; 2] = [Job::Expire, Job::Prune];

    /// The job's name in the database and the logs.
    pub fn name(self) -> &'static str {
        match self {
            Job::Expire => "expire",
            Job::Prune => "prune",
        }
    }
}

/// A job's schedule could not be read.
#[derive(Debug, thiserror::Error)]
#[error("housekeeping.{job}_schedule `{schedule}`: {source}")]
pub struct ScheduleError {
    job: &'static str,
    schedule: String,
    #[source]
    source: cron::error::Error,
}

/// Runs the periodic jobs when they are due.
#[derive(Clone)]
pub struct Housekeeping {
    store: std::sync::Arc<dyn Store>,
    clock: Clock,
    config: HousekeepingConfig,
    schedules: Vec<(Job, cron::Schedule)>,
    owner: String,
}

impl Housekeeping {
    pub fn new(
        store: std::sync::Arc<dyn Store>,
        clock: Clock,
        config: HousekeepingConfig,
    ) -> Result<Self, ScheduleError> {
        let schedules = Job::ALL
            .into_iter()
            .map(|job| {
                let text = match job {
                    Job::Expire => &config.expire_schedule,
                    Job::Prune => &config.prune_schedule,
                };
                cron::Schedule::from_str(text)
                    .map(|schedule| (job, schedule))
                    .map_err(|source| ScheduleError {
                        job: job.name(),
                        schedule: text.clone(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Housekeeping {
            store,
            clock,
            config,
            schedules,
            owner: format!("housekeeping-{}", Uuid::now_v7()),
        })
    }

    /// Run due jobs until `shutdown` is cancelled; a job in progress is finished first.
    pub async fn run(&self, shutdown: CancellationToken) {
        info!(owner = %self.owner, "housekeeping started");
        while !shutdown.is_cancelled() {
            if let Err(error) = self.run_due().await {
                warn!(%error, "housekeeping failed; retrying shortly");
            }
            let pause = self
                .next_due()
                .map(|at| {
                    self.clock
                        .real_duration(at.duration_since(self.clock.now()))
                })
                .unwrap_or(MAX_IDLE)
                .clamp(Duration::from_millis(20), MAX_IDLE);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        info!(owner = %self.owner, "housekeeping stopped");
    }

    /// The earliest next occurrence of any job's schedule.
    fn next_due(&self) -> Option<Timestamp> {
        self.schedules
            .iter()
            .filter_map(|(_, schedule)| next_after(schedule, self.clock.now()))
            .min()
    }

    /// Claim and run every job that is due and that no other worker runs; returns what each
    /// job that ran did. Tests drive the jobs with it.
    pub async fn run_due(&self) -> Result<Vec<(Job, String)>, StoreError> {
        let mut ran = Vec::new();
        for (job, schedule) in &self.schedules {
            let now = self.clock.now();
            let Some(next) = next_after(schedule, now) else {
                continue;
            };
            if !self
                .store
                .claim_job(job.name(), &self.owner, now, self.lease_until(), next)
                .await?
            {
                continue;
            }
            let outcome = tokio::select! {
                outcome = self.execute(*job) => outcome,
                never = self.keep_lease(*job) => match never {},
            };
            let finished = self.clock.now();
            let (text, result) = match outcome {
                Ok(text) => (text, Ok(())),
                Err(error) => (format!("failed: {error}"), Err(error)),
            };
            let next = next_after(schedule, finished).unwrap_or(Timestamp::MAX);
            if !self
                .store
                .finish_job(job.name(), &self.owner, finished, &text, next)
                .await?
            {
                warn!(job = job.name(), "the job's lease was lost while it ran");
            }
            info!(job = job.name(), outcome = %text, next = %next, "housekeeping job ran");
            result?;
            ran.push((*job, text));
        }
        Ok(ran)
    }

    fn lease_until(&self) -> Timestamp {
        self.clock
            .now()
            .checked_add(self.clock.simulated_duration(JOB_LEASE))
            .unwrap_or(Timestamp::MAX)
    }

    /// Renew the job's lease every third of a lease for as long as it runs (never returns).
    async fn keep_lease(&self, job: Job) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(JOB_LEASE / 3).await;
            let renewal = self.store.extend_job_lease(
                job.name(),
                &self.owner,
                self.clock.now(),
                self.lease_until(),
            );
            match renewal.await {
                Ok(true) => {}
                Ok(false) => warn!(job = job.name(), "lost the job's lease while it runs"),
                Err(error) => warn!(job = job.name(), %error, "cannot renew the job's lease"),
            }
        }
    }

    async fn execute(&self, job: Job) -> Result<String, StoreError> {
        let now = self.clock.now();
        let days = |n: u32| SignedDuration::from_hours(24 * i64::from(n));
        match job {
            Job::Expire => {
                let expired = self
                    .store
                    .expire_shipments(
                        now,
                        now - days(self.config.expire_never_found_after_days),
                        now - days(self.config.expire_silent_after_days),
                    )
                    .await?;
                for shipment in &expired {
                    warn!(shipment = %shipment.shipment_id, why = shipment.why,
                        "shipment expired: polling stopped, the merchant is told");
                }
                Ok(format!("{} shipments expired", expired.len()))
            }
            Job::Prune => {
                let pruned = self
                    .store
                    .prune_poll_errors(
                        now - days(self.config.keep_poll_errors_days),
                        self.config.keep_poll_errors_per_shipment,
                    )
                    .await?;
                let finished_before = now - days(self.config.erase_personal_data_after_days);
                let mut erased = 0;
                loop {
                    // In slices, so the write lock is never held for long.
                    let slice = self
                        .store
                        .erase_finished_shipments(finished_before, now, ERASE_SLICE)
                        .await?;
                    erased += slice;
                    if slice < u64::from(ERASE_SLICE) {
                        break;
                    }
                }
                // A client retries within minutes; a day is far more than any retry needs.
                let forgotten = self.store.prune_idempotent_responses(now - days(1)).await?;
                Ok(format!(
                    "{pruned} poll errors deleted, {erased} shipments' personal data erased, \
                     {forgotten} idempotency keys forgotten"
                ))
            }
        }
    }
}

/// The schedule's first occurrence after `at`.
fn next_after(schedule: &cron::Schedule, at: Timestamp) -> Option<Timestamp> {
    let at = chrono::DateTime::from_timestamp_millis(at.as_millisecond())?;
    let next = schedule.after(&at).next()?;
    Timestamp::from_millisecond(next.timestamp_millis()).ok()
}

#[cfg(test)]
#[path = "housekeeping_tests.rs"]
mod tests;
