//! The secrets module against the real OS keyring (Secret Service under
//! `dbus-run-session` + gnome-keyring in `./dev test`).

use passback::ErrorKind;
use passback::secrets::{SecretRef, Secrets};

#[tokio::test]
async fn real_secret_service_round_trip() {
    crate::common::require_secret_service();
    let s = Secrets::os().await;
    let st = s.status().await;
    assert!(st.ok, "keyring should be reachable: {}", st.detail);
    assert!(st.detail.contains("Secret Service"), "{}", st.detail);

    let r = SecretRef::platform(&uuid(), "it-test");
    let hosts = ["lms.example.edu".to_string()];
    s.set_bound(&r, "value-1 with spaces & ünïcode", &hosts)
        .await
        .unwrap();
    // A fresh handle (as a new process would have) reads it back, with its binding.
    let other = Secrets::os().await;
    let back = other.get_bound(&r).await.unwrap();
    assert_eq!(back.secret, "value-1 with spaces & ünïcode");
    assert_eq!(back.hosts, hosts);
    s.set_bound(&r, "value-2", &hosts).await.unwrap();
    assert_eq!(
        other.get_bound(&r).await.unwrap().secret,
        "value-2",
        "set replaces"
    );
    s.delete(&r).await.unwrap();
    assert_eq!(
        other.get_bound(&r).await.unwrap_err().kind,
        ErrorKind::SecretMissing
    );
}

#[tokio::test]
async fn entries_of_two_ledgers_do_not_collide() {
    crate::common::require_secret_service();
    let s = Secrets::os().await;
    let a = SecretRef::platform(&uuid(), "same-name");
    let b = SecretRef::platform(&uuid(), "same-name");
    let hosts = ["lms.example.edu".to_string()];
    s.set_bound(&a, "A", &hosts).await.unwrap();
    s.set_bound(&b, "B", &hosts).await.unwrap();
    assert_eq!(s.get_bound(&a).await.unwrap().secret, "A");
    assert_eq!(s.get_bound(&b).await.unwrap().secret, "B");
    s.delete(&a).await.unwrap();
    s.delete(&b).await.unwrap();
}

fn uuid() -> String {
    format!(
        "{:x}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        std::process::id()
    )
}
