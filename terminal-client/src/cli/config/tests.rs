use std::io::Write;

use outband_protocol::SigningAlg;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn secret_of(settings: &Settings) -> String {
    match &settings.auth {
        ClientAuth::ClientSecretBasic(secret) => secret.secret().to_owned(),
        other => panic!("expected a secret, got {other:?}"),
    }
}

#[test]
fn defaults_are_the_demo_server() {
    let settings = Settings::resolve(&ConnectionArgs::default(), &no_env).unwrap();
    assert_eq!(settings.issuer, "http://127.0.0.1:8080");
    assert_eq!(settings.client_id, "demo-pos");
    assert_eq!(secret_of(&settings), "demo-pos-secret");
    assert!(settings.request_key.is_none());
    assert_eq!(settings.sale.mode, DeliveryMode::Poll);
    assert_eq!(settings.sale.merchant, "Corner Café");
    assert_eq!(settings.sale.listen.to_string(), "127.0.0.1:8090");
    assert!(settings.data_dir.is_none() && settings.log_file.is_none());
    assert!(settings.journal().unwrap_err().to_string().contains("--data-dir"));
}

#[test]
fn the_data_dir_follows_xdg() {
    let home = |name: &str| (name == "HOME").then(|| "/home/till".to_owned());
    let settings = Settings::resolve(&ConnectionArgs::default(), &home).unwrap();
    assert_eq!(
        settings.data_dir.as_deref(),
        Some(Path::new("/home/till/.local/state/outband-pos"))
    );
    assert_eq!(
        settings.log_file.as_deref(),
        Some(Path::new("/home/till/.local/state/outband-pos/outband-pos.log"))
    );
    let xdg = |name: &str| match name {
        "XDG_STATE_HOME" => Some("/var/state".to_owned()),
        "HOME" => Some("/home/till".to_owned()),
        _ => None,
    };
    let settings = Settings::resolve(&ConnectionArgs::default(), &xdg).unwrap();
    assert_eq!(settings.data_dir.as_deref(), Some(Path::new("/var/state/outband-pos")));
    let args = ConnectionArgs {
        data_dir: Some("/srv/pos".into()),
        log_file: Some("/tmp/pos.log".into()),
        ..ConnectionArgs::default()
    };
    let settings = Settings::resolve(&args, &xdg).unwrap();
    assert_eq!(
        settings.data_dir.as_deref(),
        Some(Path::new("/srv/pos")),
        "the flag wins"
    );
    assert_eq!(settings.log_file.as_deref(), Some(Path::new("/tmp/pos.log")));
}

#[test]
fn another_client_needs_a_secret_and_the_error_says_where() {
    let args = ConnectionArgs {
        client_id: Some("shop-7".into()),
        ..ConnectionArgs::default()
    };
    let err = Settings::resolve(&args, &no_env).err().unwrap().to_string();
    for needle in [
        "shop-7",
        "OUTBAND_POS_CLIENT_SECRET",
        "--client-secret-file",
        "--key-file",
        "OUTBAND_POS_KEY_FILE",
    ] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
    let env = |name: &str| (name == "OUTBAND_POS_CLIENT_SECRET").then(|| "from-env".to_owned());
    assert_eq!(secret_of(&Settings::resolve(&args, &env).unwrap()), "from-env");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "from-file\n").unwrap();
    let args = ConnectionArgs {
        client_secret_file: Some(path),
        ..args
    };
    assert_eq!(
        secret_of(&Settings::resolve(&args, &env).unwrap()),
        "from-file",
        "the file flag wins over the variable"
    );
}

#[test]
fn the_config_file_is_read_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pos.toml");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(
        file,
        r#"
issuer = "https://bank.example"
client_id = "till-2"
mode = "ping"
listen = "127.0.0.1:9999"
merchant = "Bakery"
prefix = "BAKE"
iban = "DE89 3704 0044 0532 0130 00"
currency = "CHF"
requested_expiry = 90
data_dir = "/srv/till"
enroll_link = "outband://enroll?code=ABCD"
"#
    )
    .unwrap();
    let env = |name: &str| (name == "OUTBAND_POS_CLIENT_SECRET").then(|| "s".to_owned());
    let args = ConnectionArgs {
        config: Some(path.clone()),
        issuer: Some("https://other.example".into()),
        ..ConnectionArgs::default()
    };
    let settings = Settings::resolve(&args, &env).unwrap();
    assert_eq!(settings.issuer, "https://other.example", "the flag wins");
    assert_eq!(settings.client_id, "till-2");
    assert_eq!(settings.sale.mode, DeliveryMode::Ping);
    assert_eq!(settings.sale.listen.port(), 9999);
    assert_eq!(settings.sale.merchant, "Bakery");
    assert_eq!(settings.sale.iban.as_ref().unwrap().as_str(), "DE89370400440532013000");
    assert_eq!(settings.sale.currency.unwrap().as_str(), "CHF");
    assert_eq!(settings.sale.requested_expiry, Some(90));
    assert_eq!(settings.data_dir.as_deref(), Some(Path::new("/srv/till")));
    assert_eq!(settings.enroll_link.as_deref(), Some("outband://enroll?code=ABCD"));

    std::fs::write(&path, "issuer = \"x\"\ncolour = \"blue\"\n").unwrap();
    let err = format!("{:#}", Settings::resolve(&args, &env).err().unwrap());
    assert!(err.contains("colour"), "{err}");
    std::fs::write(&path, "mode = \"carrier-pigeon\"\n").unwrap();
    let err = format!("{:#}", Settings::resolve(&args, &env).err().unwrap());
    assert!(err.contains("mode"), "{err}");
}

#[test]
fn a_key_file_means_private_key_jwt_and_allows_signed_requests() {
    let args = ConnectionArgs {
        signed_requests: true,
        ..ConnectionArgs::default()
    };
    let err = Settings::resolve(&args, &no_env).err().unwrap().to_string();
    assert!(
        err.contains("--key-file") && err.contains("OUTBAND_POS_KEY_FILE"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.json");
    std::fs::write(&path, SigningAlg::ES256.generate_private_jwk().unwrap().to_string()).unwrap();
    let args = ConnectionArgs {
        key_file: Some(path),
        ..args
    };
    let settings = Settings::resolve(&args, &no_env).unwrap();
    assert!(matches!(settings.auth, ClientAuth::PrivateKeyJwt(_)));
    assert!(settings.request_key.is_some());
}

#[test]
fn empty_values_are_refused_by_name() {
    let args = ConnectionArgs {
        issuer: Some(" ".into()),
        ..ConnectionArgs::default()
    };
    let err = Settings::resolve(&args, &no_env).err().unwrap().to_string();
    assert!(err.contains("--issuer") && err.contains("OUTBAND_POS_ISSUER"), "{err}");
}

#[test]
fn tls_client_auth_needs_a_certificate_and_sends_no_secret() {
    let args = ConnectionArgs {
        client_id: Some("till-7".into()),
        auth_method: Some("tls_client_auth".into()),
        ..ConnectionArgs::default()
    };
    let err = Settings::resolve(&args, &no_env).err().unwrap().to_string();
    assert!(
        err.contains("--client-cert") && err.contains("OUTBAND_POS_CLIENT_KEY"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["till-7.shop.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_file, key_file) = (dir.path().join("till.pem"), dir.path().join("till.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let config = dir.path().join("pos.toml");
    std::fs::write(
        &config,
        format!(
            "auth_method = \"self_signed_tls_client_auth\"\nclient_cert = {:?}\nclient_key = {:?}\nca_file = {:?}\n",
            cert_file, key_file, cert_file
        ),
    )
    .unwrap();
    let from_file = ConnectionArgs {
        client_id: Some("till-7".into()),
        config: Some(config.clone()),
        ..ConnectionArgs::default()
    };
    let settings = Settings::resolve(&from_file, &no_env).unwrap();
    assert!(matches!(settings.auth, ClientAuth::SelfSignedTlsClientAuth));
    assert!(settings.tls.has_client_certificate());

    let flag_wins = ConnectionArgs {
        auth_method: Some("tls_client_auth".into()),
        ..from_file
    };
    let settings = Settings::resolve(&flag_wins, &no_env).unwrap();
    assert!(matches!(settings.auth, ClientAuth::TlsClientAuth));

    let no_key = ConnectionArgs {
        client_cert: Some(cert_file),
        ..ConnectionArgs::default()
    };
    let err = format!("{:#}", Settings::resolve(&no_key, &no_env).err().unwrap());
    assert!(err.contains("--client-key") && err.contains("give both"), "{err}");
}

#[test]
fn a_receipt_url_must_be_http_and_name_the_payment_or_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pos.toml");
    let args = ConnectionArgs {
        config: Some(path.clone()),
        ..ConnectionArgs::default()
    };
    std::fs::write(&path, "receipt_url = \"https://shop.example/r/{payment_id}\"\n").unwrap();
    let settings = Settings::resolve(&args, &no_env).unwrap();
    assert_eq!(
        settings.receipt_url.as_deref(),
        Some("https://shop.example/r/{payment_id}")
    );
    for bad in [
        "https://shop.example/receipts",
        "ftp://shop.example/{payment_id}",
        "{reference}",
    ] {
        std::fs::write(&path, format!("receipt_url = {bad:?}\n")).unwrap();
        let err = format!("{:#}", Settings::resolve(&args, &no_env).err().unwrap());
        assert!(err.contains("receipt_url"), "{bad}: {err}");
    }
}
