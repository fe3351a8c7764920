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
    s.set(&r, "value-1 with spaces & ünïcode").await.unwrap();
    // A fresh handle (as a new process would have) reads it back.
    let other = Secrets::os().await;
    assert_eq!(other.get(&r).await.unwrap(), "value-1 with spaces & ünïcode");
    s.set(&r, "value-2").await.unwrap();
    assert_eq!(other.get(&r).await.unwrap(), "value-2", "set replaces");
    s.delete(&r).await.unwrap();
    assert_eq!(other.get(&r).await.unwrap_err().kind, ErrorKind::SecretMissing);
}

#[tokio::test]
async fn entries_of_two_ledgers_do_not_collide() {
    crate::common::require_secret_service();
    let s = Secrets::os().await;
    let a = SecretRef::platform(&uuid(), "same-name");
    let b = SecretRef::platform(&uuid(), "same-name");
    s.set(&a, "A").await.unwrap();
    s.set(&b, "B").await.unwrap();
    assert_eq!(s.get(&a).await.unwrap(), "A");
    assert_eq!(s.get(&b).await.unwrap(), "B");
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
