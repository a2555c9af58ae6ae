//! A fresh PostgreSQL database per test, so that tests never see each other's rows: on
//! the server `HOOKLINE_TEST_POSTGRES_URL` names, or the local one (`scripts/test` drops
//! what earlier runs left). Also one with an earlier schema, to test a migration.

/// Creates an empty database with a name of its own; returns its URL.
pub async fn fresh_postgres_database() -> String {
    let base = std::env::var("HOOKLINE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432".to_owned());
    let unique = hookline_core::ids::OrgId::generate();
    let name = format!("hl_test_{}", unique.as_str().to_lowercase());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{base}/postgres"))
        .await
        .expect("the test PostgreSQL server is reachable");
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("a test database can be created");
    format!("{base}/{name}")
}

/// A fresh database with the schema as it was before deliveries and attempts were
/// partitioned, for testing that migration on rows written before it.
pub async fn postgres_database_before_partitioning() -> String {
    let url = fresh_postgres_database().await;
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("the database is reachable");
    let now = hookline_core::clock::Clock::now_ms(&hookline_core::clock::SystemClock);
    crate::schema::migrate_first(&pool, now, crate::schema::BEFORE_PARTITIONING)
        .await
        .expect("the earlier migrations apply");
    pool.close().await;
    url
}
