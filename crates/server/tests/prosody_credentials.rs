//! An account carried over from Prosody keeps its password: the SCRAM-SHA-1 keys Prosody stored (made by
//! Debian's Prosody 0.12 with `prosodyctl register`, see crates/sasl/tests/fixtures/prosody/README.md) log in.

use rookery_store::{Account, Role};
use rookery_test_support::{
    PROSODY_ALICE_PASSWORD as PASSWORD, SaslFailure, TestServer, prosody_alice_credentials,
};

#[tokio::test]
async fn a_prosody_account_logs_in_with_its_password() {
    let server = TestServer::start().await;
    let account = Account {
        username: "alice".into(),
        role: Role::Normal,
        credentials: prosody_alice_credentials(),
        created_at: 0,
        disabled: false,
    };
    server
        .server()
        .store
        .accounts()
        .insert(&account)
        .await
        .unwrap();

    let mut client = server.connect().await;
    // With an account that has only SHA-1 keys, SCRAM-SHA-256 is not offered: a client choosing it could not log in.
    assert_eq!(client.mechanisms(), ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"]);
    let err = client
        .login("alice", "wrong password", "SCRAM-SHA-1")
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<SaslFailure>(),
        Some(&SaslFailure("not-authorized".into()))
    );
    client
        .login("alice", PASSWORD, "SCRAM-SHA-1")
        .await
        .unwrap();
    assert_eq!(
        client.bind(Some("x")).await.unwrap(),
        "alice@rookery.test/x"
    );

    let mut plus = server.connect().await;
    plus.login("alice", PASSWORD, "SCRAM-SHA-1-PLUS")
        .await
        .unwrap();
    server.stop().await;
}
