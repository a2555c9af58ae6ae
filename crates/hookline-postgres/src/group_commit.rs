//! Publishes that arrive together commit together. Each publish waits for its commit
//! anyway, and storing many events costs the same few statements and one WAL flush as
//! storing one, so a handful of committers each take whatever publishes queued up while
//! the others were committing, and store them in one transaction.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::NotifyGate;
use crate::publish::{self, Publication};
use hookline_store::{AttachedNode, CommitTimes, LocalLeases, Published, StoreError, StoreResult};

/// What storing publications needs: the pool, the NOTIFY gate, and the node to lease
/// fresh deliveries to (`publish::publish_all`).
#[derive(Clone)]
pub struct Publisher {
    pub pool: PgPool,
    pub notify: NotifyGate,
    pub node: AttachedNode,
}

/// Transactions storing publishes at once: while one commits, the next batch gathers.
const COMMITTERS: usize = 4;

/// The most publishes one transaction stores.
const MOST_PER_COMMIT: usize = 256;

struct Request {
    publication: Publication,
    answer: oneshot::Sender<StoreResult<Published>>,
}

/// The way into the committers; they stop when every clone of it is gone.
#[derive(Clone)]
pub struct GroupCommit {
    requests: mpsc::Sender<Request>,
    commit_times: CommitTimes,
}

impl GroupCommit {
    /// Starts the committers on the current runtime.
    pub fn start(publisher: Publisher) -> Self {
        let (requests, queued) = mpsc::channel(MOST_PER_COMMIT * COMMITTERS);
        let queued = Arc::new(Mutex::new(queued));
        let commit_times = CommitTimes::default();
        for _ in 0..COMMITTERS {
            tokio::spawn(commit_batches(
                publisher.clone(),
                queued.clone(),
                commit_times.clone(),
            ));
        }
        Self {
            requests,
            commit_times,
        }
    }

    /// How long its batches take, from `BEGIN` to the end of `COMMIT`.
    pub fn commit_times(&self) -> CommitTimes {
        self.commit_times.clone()
    }

    /// Stores `publication` with whatever else is being published, and answers once that
    /// is committed. Hands it back if the committers are gone (their runtime ended).
    pub async fn publish(
        &self,
        publication: Publication,
    ) -> Result<StoreResult<Published>, Publication> {
        let (answer, answered) = oneshot::channel();
        let request = Request {
            publication,
            answer,
        };
        if let Err(refused) = self.requests.send(request).await {
            return Err(refused.0.publication);
        }
        Ok(answered.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the publish was dropped before its commit".into(),
            ))
        }))
    }
}

async fn commit_batches(
    publisher: Publisher,
    queued: Arc<Mutex<mpsc::Receiver<Request>>>,
    commit_times: CommitTimes,
) {
    let mut batch = Vec::with_capacity(MOST_PER_COMMIT);
    loop {
        let taken = queued
            .lock()
            .await
            .recv_many(&mut batch, MOST_PER_COMMIT)
            .await;
        if taken == 0 {
            return;
        }
        let began = std::time::Instant::now();
        commit(&publisher, std::mem::take(&mut batch)).await;
        commit_times.observe(began.elapsed());
    }
}

/// Stores the batch in one transaction. The one way a publish can fail by itself is a
/// lost race for its idempotency key: if a batch with keys fails, each publish is
/// stored alone, so that one fails alone; any other failure is the database's, and
/// every publish of the batch is told.
async fn commit(publisher: &Publisher, batch: Vec<Request>) {
    let (publications, answers): (Vec<Publication>, Vec<_>) =
        batch.into_iter().map(|r| (r.publication, r.answer)).unzip();
    let keyed = publications
        .iter()
        .any(|p| p.event.idempotency_key.is_some());
    let each_alone = (publications.len() > 1 && keyed).then(|| publications.clone());
    let now = publications.iter().map(|p| p.now).max().unwrap_or_default();
    let stored = in_one_transaction(publisher, publications, publisher.notify.due(now)).await;
    match (stored, each_alone) {
        (Ok(published), _) => {
            for (answer, published) in answers.into_iter().zip(published) {
                // A publisher that went away no longer needs its answer.
                let _ = answer.send(Ok(published));
            }
        }
        (Err(e), None) => {
            for answer in answers {
                let _ = answer.send(Err(e.clone()));
            }
        }
        (Err(_), Some(publications)) => {
            for (answer, publication) in answers.into_iter().zip(publications) {
                let _ = answer.send(publish_alone(publisher, publication).await);
            }
        }
    }
}

/// Stores one publication in a transaction of its own.
pub async fn publish_alone(
    publisher: &Publisher,
    publication: Publication,
) -> StoreResult<Published> {
    let notify = publisher.notify.due(publication.now);
    in_one_transaction(publisher, vec![publication], notify)
        .await?
        .pop()
        .ok_or_else(|| StoreError::Corrupt("a publication went unanswered".into()))
}

/// Stores publications together in a transaction of their own, apart from the
/// committers' batches: a batch publish, all or nothing.
pub async fn publish_together(
    publisher: &Publisher,
    publications: Vec<Publication>,
) -> StoreResult<Vec<Published>> {
    let now = publications.iter().map(|p| p.now).max().unwrap_or_default();
    in_one_transaction(publisher, publications, publisher.notify.due(now)).await
}

/// Hands the deliveries it leased at publish to the node once committed; gives their
/// places back if anything failed.
async fn in_one_transaction(
    publisher: &Publisher,
    publications: Vec<Publication>,
    notify: bool,
) -> StoreResult<Vec<Published>> {
    let mut leases = LocalLeases::new(publisher.node.clone());
    let stored = async {
        let mut tx = publisher.pool.begin().await?;
        let published = publish::publish_all(&mut tx, publications, notify, &mut leases).await?;
        tx.commit().await?;
        Ok(published)
    }
    .await;
    match stored {
        Ok(_) => leases.committed(),
        Err(_) => leases.undone(),
    }
    stored
}
