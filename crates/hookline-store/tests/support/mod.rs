//! What the store tests share: each runs once on each store, SQLite in a temp dir and a
//! fresh database on the test PostgreSQL server (`HOOKLINE_TEST_POSTGRES_URL`).

use hookline_postgres::PgStore;
use hookline_postgres::test_databases::fresh_postgres_database;
use hookline_sqlite::SqliteStore;
use hookline_store::Store;

/// Where a test's store keeps its data, so it can be reopened and looked into.
pub enum Backend {
    Sqlite(tempfile::TempDir),
    /// The URL of a database of its own.
    Postgres(String),
}

impl Backend {
    pub async fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    pub async fn postgres() -> Self {
        Self::Postgres(fresh_postgres_database().await)
    }

    /// A store on this data, as a fresh process would open it.
    pub async fn open(&self) -> Box<dyn Store> {
        match self {
            Self::Sqlite(dir) => Box::new(SqliteStore::open(dir.path()).unwrap()),
            Self::Postgres(url) => Box::new(PgStore::connect(url, 2).await.unwrap()),
        }
    }
}

/// Runs the async test `body` once on each store.
macro_rules! on_both_stores {
    ($body:ident) => {
        mod $body {
            #[tokio::test]
            async fn on_sqlite() {
                super::$body(super::Backend::sqlite().await).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                super::$body(super::Backend::postgres().await).await;
            }
        }
    };
}
