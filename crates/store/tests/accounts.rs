//! The accounts conformance suite against SQLite (in memory and in a file), and what only a file can show: the
//! database survives reopening, and two stores (or two processes) can use one file at the same time.

#[macro_use]
mod suite;

use rookery_store::{Role, Store, StoreError};
use std::path::{Path, PathBuf};
use std::time::Duration;
use suite::{both, sha1_only};

async fn in_memory() -> (Store, ()) {
    (Store::open_in_memory().await.unwrap(), ())
}

async fn in_file() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&database_path(dir.path()))
        .await
        .unwrap();
    (store, dir)
}

fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("rookery").join("rookery.sqlite")
}

mod sqlite_in_memory {
    conformance_tests!(super::in_memory());
}

mod sqlite_file {
    conformance_tests!(super::in_file());
}

#[tokio::test]
async fn open_creates_the_directory_and_reopening_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("rookery.sqlite");
    let store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(store.describe(), "sqlite");
    store
        .accounts()
        .create("alice", &both(1), Role::Admin)
        .await
        .unwrap();
    store.close().await;
    assert!(path.is_file());

    // Migrations already applied are not applied again.
    let store = Store::open_sqlite(&path).await.unwrap();
    let alice = store.accounts().get("alice").await.unwrap().unwrap();
    assert_eq!(alice.credentials, both(1));
    store.close().await;
    // A clean close checkpoints the WAL into the main file.
    let wal = path.with_file_name("rookery.sqlite-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "WAL left behind"
    );
}

#[tokio::test]
async fn open_fails_cleanly_when_the_directory_cannot_be_made() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let error = Store::open_sqlite(&file.join("rookery.sqlite"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::CreateDirectory { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("not-a-dir"), "{error}");
}

#[tokio::test]
async fn in_memory_stores_are_separate() {
    let a = Store::open_in_memory().await.unwrap();
    let b = Store::open_in_memory().await.unwrap();
    assert_eq!(a.describe(), "sqlite (in memory)");
    a.accounts()
        .create("alice", &both(1), Role::Normal)
        .await
        .unwrap();
    assert_eq!(b.accounts().count().await.unwrap(), 0);
    // Clones share the database.
    assert_eq!(a.clone().accounts().count().await.unwrap(), 1);
}

/// The server and `rookery user add` each open the file; both write, both see each other's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = database_path(dir.path());
    // Opened at the same moment on a new file: both race to create, switch to WAL and migrate.
    let (server, cli) = tokio::join!(Store::open_sqlite(&path), Store::open_sqlite(&path));
    let (server, cli) = (server.unwrap(), cli.unwrap());

    let write = |store: Store, prefix: &'static str| async move {
        let accounts = store.accounts();
        for i in 0..25u8 {
            let name = format!("{prefix}{i:02}");
            accounts
                .create(&name, &sha1_only(i), Role::Normal)
                .await
                .unwrap();
            accounts.set_credentials(&name, &both(i)).await.unwrap();
            // Reads go on while the other store writes.
            accounts.list().await.unwrap();
        }
    };
    tokio::join!(write(server.clone(), "server"), write(cli.clone(), "cli"));

    for store in [&server, &cli] {
        let accounts = store.accounts();
        assert_eq!(accounts.count().await.unwrap(), 50);
        assert_eq!(accounts.count_without_sha256().await.unwrap(), 0);
        assert_eq!(
            accounts.get("cli07").await.unwrap().unwrap().credentials,
            both(7)
        );
    }
    // A username taken through one store is taken for the other.
    assert!(matches!(
        cli.accounts()
            .create("server03", &both(1), Role::Normal)
            .await,
        Err(StoreError::AlreadyExists)
    ));
    server.close().await;
    cli.close().await;
}

/// Child side of `two_processes_on_one_file`: does nothing unless started by it.
#[tokio::test]
#[ignore = "run by two_processes_on_one_file in a child process"]
async fn child_process_writer() {
    let Ok(path) = std::env::var("ROOKERY_STORE_CHILD_DB") else {
        return;
    };
    let store = Store::open_sqlite(Path::new(&path)).await.unwrap();
    let accounts = store.accounts();
    for i in 0..30u8 {
        accounts
            .create(&format!("child{i:02}"), &both(i), Role::Normal)
            .await
            .unwrap();
    }
    store.close().await;
}

/// A real second process (this test binary, running `child_process_writer`) writes to the file while this one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = database_path(dir.path());
    let parent = Store::open_sqlite(&path).await.unwrap();

    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_writer",
            "--ignored",
            "--nocapture",
        ])
        .env("ROOKERY_STORE_CHILD_DB", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let accounts = parent.accounts();
    for i in 0..30u8 {
        accounts
            .create(&format!("parent{i:02}"), &both(i), Role::Normal)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("child process finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "child ran no test:\n{stdout}");

    assert_eq!(accounts.count().await.unwrap(), 60);
    assert!(accounts.exists("child29").await.unwrap());
    parent.close().await;
}

/// Several stores opening one new file at the same moment all succeed (WAL switch and migrations race).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_opening_a_new_file_at_once() {
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let path = database_path(dir.path());
        let opened = join_spawned((0..4).map(|_| {
            let path = path.clone();
            tokio::spawn(async move { Store::open_sqlite(&path).await })
        }))
        .await;
        for store in opened {
            let store = store.unwrap();
            assert_eq!(store.accounts().count().await.unwrap(), 0);
            store.close().await;
        }
    }
}

async fn join_spawned<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.unwrap());
    }
    results
}

/// Snikket's `mod_protect_last_admin`: the only enabled administrator cannot be deleted, disabled, demoted or
/// scheduled for deletion; once a second administrator exists, the first one can.
#[tokio::test]
async fn the_only_administrator_is_protected() {
    let store = Store::open_in_memory().await.unwrap();
    let accounts = store.accounts();
    accounts
        .create("root", &both(1), Role::Admin)
        .await
        .unwrap();
    accounts
        .create("bob", &both(1), Role::Normal)
        .await
        .unwrap();

    let only_admin = |r: Result<bool, StoreError>| matches!(r, Err(StoreError::OnlyAdmin));
    assert!(only_admin(accounts.delete("root").await));
    assert!(only_admin(accounts.set_role("root", Role::Normal).await));
    assert!(only_admin(accounts.set_role("root", Role::Limited).await));
    assert!(only_admin(accounts.set_disabled("root", true).await));
    assert!(only_admin(
        store.account_deletions().request("root", 1, 2).await
    ));
    let root = accounts.get("root").await.unwrap().unwrap();
    assert_eq!((root.role, root.disabled), (Role::Admin, false));
    assert_eq!(store.account_deletions().get("root").await.unwrap(), None);
    // What leaves the administrator alone is allowed.
    assert!(accounts.set_role("root", Role::Admin).await.unwrap());
    assert!(accounts.set_disabled("root", false).await.unwrap());
    assert!(accounts.delete("bob").await.unwrap());
    assert!(
        StoreError::OnlyAdmin
            .to_string()
            .starts_with("cannot-remove-only-admin")
    );

    // A disabled administrator does not count: it cannot administer.
    accounts.create("eve", &both(1), Role::Admin).await.unwrap();
    assert!(accounts.set_disabled("eve", true).await.unwrap());
    assert!(only_admin(accounts.delete("root").await));
    assert!(accounts.set_disabled("eve", false).await.unwrap());
    assert!(accounts.set_role("root", Role::Normal).await.unwrap());
    assert!(only_admin(accounts.delete("eve").await));
    assert!(accounts.delete("root").await.unwrap());
}
