//! Enrollment: links, bare codes, the pinned AS key, and how the key is kept.

use outband_authenticator_core::{Error, Invite, KeyAlg, KeyStorage, Pin};
use outband_protocol::Subject;

use crate::support::{authenticator, enrolled, pin, server};

#[tokio::test]
async fn a_link_and_a_bare_code_each_enroll_a_device() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (authenticator, by_link) = enrolled(&server, dir.path()).await;
    assert_eq!(by_link.username, "alice");
    assert_eq!(by_link.subject, "sub-alice");
    assert_eq!(by_link.issuer.as_str().trim_end_matches('/'), server.url);
    assert_eq!(by_link.device_name, "laptop");
    assert_eq!(by_link.key_storage, KeyStorage::File);

    // A bare code, typed in lower case with spaces, plus the issuer; an EdDSA key.
    let (code, _) = server.invite("alice").await;
    let typed = code
        .to_lowercase()
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ");
    let issuer = url::Url::parse(&server.url).unwrap();
    let invite = Invite::parse(&typed, Some(&issuer)).unwrap();
    assert!(invite.pinned.is_none());
    let by_code = authenticator
        .enroll(&invite, "desktop", KeyAlg::Eddsa, &pin())
        .await
        .unwrap();
    assert_ne!(by_code.id, by_link.id);
    assert_eq!(by_code.alg, KeyAlg::Eddsa);

    let listed: Vec<_> = authenticator.accounts().unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(listed, [by_link.id.clone(), by_code.id.clone()]);
    let devices = server
        .on_server(|state| async move {
            state
                .store
                .devices_of_subject(&Subject::new("sub-alice"))
                .await
                .unwrap()
        })
        .await;
    let mut algs: Vec<_> = devices.iter().map(|d| (d.name.clone(), d.alg.clone())).collect();
    algs.sort();
    assert_eq!(
        algs,
        [("desktop".into(), "EdDSA".into()), ("laptop".into(), "ES256".into())]
    );

    // Both work: each gets a token and reads the (empty) pending list.
    for account in [&by_link, &by_code] {
        let session = authenticator.unlock(&account.id, &pin()).unwrap();
        assert!(session.pending().await.unwrap().is_empty());
    }

    // A code works once.
    let again = authenticator.enroll(&invite, "third", KeyAlg::Es256, &pin()).await;
    assert!(
        matches!(&again, Err(Error::Server { status: 400, error, .. }) if error == "invalid_grant"),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_link_pinning_another_key_is_refused_before_the_code_is_spent() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let authenticator = authenticator(&server, dir.path());
    let (_, link) = server.invite("alice").await;
    let genuine = Invite::parse(&link, None).unwrap();
    let pinned = genuine.pinned.clone().unwrap();

    let mut wrong_thumbprint = genuine.clone();
    wrong_thumbprint.pinned.as_mut().unwrap().jkt = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into();
    let mut unknown_key = genuine.clone();
    unknown_key.pinned.as_mut().unwrap().kid = format!("{}-other", pinned.kid);
    for invite in [wrong_thumbprint, unknown_key] {
        let refused = authenticator.enroll(&invite, "laptop", KeyAlg::Es256, &pin()).await;
        assert!(matches!(refused, Err(Error::IssuerKeyMismatch(_))), "{refused:?}");
    }
    assert!(authenticator.accounts().unwrap().is_empty());
    assert!(!dir.path().join("keys").exists() || std::fs::read_dir(dir.path().join("keys")).unwrap().count() == 0);

    // The code was not sent, so the genuine link still works.
    let account = authenticator
        .enroll(&genuine, "laptop", KeyAlg::Es256, &pin())
        .await
        .unwrap();
    assert_eq!(account.username, "alice");
}

#[cfg(unix)]
#[tokio::test]
async fn the_key_file_is_private_and_sealed_under_the_pin() {
    use std::os::unix::fs::PermissionsExt;
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("device");
    let (authenticator, account) = enrolled(&server, &data).await;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let key_file = data.join("keys").join(format!("{}.sealed", account.id));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(&data.join("accounts.json")), 0o600);

    // The sealed file holds no key material in the clear: not even the public
    // coordinates the private JWK repeats, nor any JWK member name.
    let id = account.id.0.clone();
    let device = server
        .on_server(|state| async move { state.store.device(&id).await.unwrap().unwrap() })
        .await;
    let public: serde_json::Value = serde_json::from_str(&device.public_jwk).unwrap();
    let sealed = std::fs::read_to_string(&key_file).unwrap();
    assert!(!sealed.contains(public["x"].as_str().unwrap()));
    assert!(!sealed.contains("\"d\"") && !sealed.contains("credential"));
    let blob: serde_json::Value = serde_json::from_str(&sealed).unwrap();
    assert_eq!(blob["kdf"]["alg"], "argon2id");
    assert_eq!(blob["cipher"], "A256GCM");
    let accounts = std::fs::read_to_string(data.join("accounts.json")).unwrap();
    assert!(!accounts.contains(public["x"].as_str().unwrap()));

    // Only the PIN opens it.
    assert!(matches!(
        authenticator.unlock(&account.id, &Pin::new("1357").unwrap()),
        Err(Error::WrongPin)
    ));
    assert!(authenticator.unlock(&account.id, &pin()).is_ok());
}
