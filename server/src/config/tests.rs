use super::*;

#[test]
fn defaults_are_valid_in_development() {
    let settings = Config::from_toml("environment = \"development\"")
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(settings.issuer, "http://127.0.0.1:8080");
    assert_eq!(settings.endpoint("/token"), "http://127.0.0.1:8080/token");
}

#[test]
fn plain_http_issuer_refused_in_production() {
    let err = Config::from_toml("issuer = \"http://127.0.0.1:8080\"")
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("`issuer`"), "{err}");
}

#[test]
fn unknown_keys_are_named() {
    let err = Config::from_toml("isuser = \"https://x\"").unwrap_err();
    assert!(err.to_string().contains("isuser"), "{err}");
    let err = Config::from_toml("[tokens]\naccess_token_lifetim = 5").unwrap_err();
    assert!(err.to_string().contains("access_token_lifetim"), "{err}");
}

#[test]
fn wrong_types_are_named() {
    let err = Config::from_toml("[tokens]\naccess_token_lifetime = \"long\"").unwrap_err();
    assert!(err.to_string().contains("tokens.access_token_lifetime"), "{err}");
}

#[test]
fn test_users_refused_in_production() {
    let text = "issuer = \"https://as.example\"\n[[users]]\nusername = \"alice\"\ntest_decision = \"approve\"";
    let err = Config::from_toml(text).unwrap().validate().unwrap_err();
    assert!(err.to_string().contains("production"), "{err}");
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own large error
fn tool_variables_are_not_configuration() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("OUTBAND_CONFIG", "/etc/outband.toml");
        jail.set_env("OUTBAND_LOG_FORMAT", "json");
        jail.set_env("OUTBAND_TEST_BACKEND", "postgres");
        jail.set_env("OUTBAND_TOKENS__ACCESS_TOKEN_LIFETIME", "77");
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.tokens.access_token_lifetime, 77);
        jail.set_env("OUTBAND_ISUSER", "x");
        let err = Config::load(None).unwrap_err().to_string();
        assert!(err.contains("isuser"), "{err}");
        Ok(())
    });
}

fn outbound(text: &str) -> Result<Settings, LoadConfigError> {
    Config::from_toml(&format!("environment = \"development\"\n[outbound]\n{text}"))?.validate()
}

#[test]
fn outbound_defaults_and_values() {
    let settings = outbound("").unwrap();
    assert_eq!(settings.outbound.connect_timeout, std::time::Duration::from_secs(3));
    assert_eq!(settings.outbound.timeout, std::time::Duration::from_secs(10));
    assert_eq!(settings.outbound.max_response_bytes, 256 * 1024);
    assert!(!settings.outbound.policy.insecure_http_loopback);
    let text =
        "timeout_ms = 500\nallow_private = [\"127.0.0.1/32\", \"Bank-Internal.example\", \"fd00::/8\", \"10.1.2.3\"]";
    let settings = outbound(text).unwrap();
    assert_eq!(settings.outbound.timeout, std::time::Duration::from_millis(500));
    let policy = &settings.outbound.policy;
    assert_eq!(policy.hosts, ["bank-internal.example"]);
    let nets: Vec<String> = policy.networks.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["127.0.0.1/32", "fd00::/8", "10.1.2.3/32"]);
}

#[test]
fn outbound_errors_are_named() {
    for (text, key) in [
        ("allow_private = [\"10.0.0.0/33\"]", "outbound.allow_private"),
        ("allow_private = [\"10.0.0/8\"]", "outbound.allow_private"),
        ("allow_private = [\"bank internal\"]", "outbound.allow_private"),
        ("allow_private = [\"\"]", "outbound.allow_private"),
        ("timeout_ms = 0", "outbound.timeout_ms"),
        ("connect_timeout_ms = 0", "outbound.connect_timeout_ms"),
        ("max_response_bytes = 0", "outbound.max_response_bytes"),
        ("ca_bundle = \"/nonexistent/ca.pem\"", "outbound.ca_bundle"),
        ("allow_redirects = true", "allow_redirects"),
    ] {
        let err = outbound(text).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn outbound_ca_bundle_must_hold_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    let err = outbound(&format!("ca_bundle = {:?}", path.display().to_string()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("outbound.ca_bundle"), "{err}");
}

#[test]
fn insecure_http_loopback_refused_in_production() {
    let text = "issuer = \"https://as.example\"\n[outbound]\nallow_insecure_http_loopback = true";
    let err = Config::from_toml(text).unwrap().validate().unwrap_err().to_string();
    assert!(err.contains("outbound.allow_insecure_http_loopback"), "{err}");
    let settings = outbound("allow_insecure_http_loopback = true").unwrap();
    assert!(settings.outbound.policy.insecure_http_loopback);
}

#[test]
fn admin_section_reads_the_token_file_and_is_refused_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin-token");
    let token = "0123456789abcdef0123456789abcdef-admin";
    std::fs::write(&path, format!("{token}\n")).unwrap();
    let section = format!("[admin]\ntoken_file = {:?}", path.display().to_string());
    let settings = Config::from_toml(&format!("environment = \"development\"\n{section}"))
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(
        settings.admin_token_hash.as_deref(),
        Some(outband_protocol::jose::sha256_b64url(token.as_bytes()).as_str())
    );
    let production = format!("issuer = \"https://as.example\"\n{section}");
    let err = Config::from_toml(&production)
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("admin.token_file") && err.contains("production"), "{err}");

    std::fs::write(&path, "short").unwrap();
    let err = Config::from_toml(&format!("environment = \"development\"\n{section}"))
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("admin.token_file") && err.contains("at least 32"), "{err}");
    let missing = "environment = \"development\"\n[admin]\ntoken_file = \"/nonexistent/token\"";
    let err = Config::from_toml(missing).unwrap().validate().unwrap_err().to_string();
    assert!(err.contains("admin.token_file"), "{err}");
    let err = Config::from_toml("[admin]\ntoken = \"x\"").unwrap_err().to_string();
    assert!(err.contains("token"), "{err}");
    assert!(Config::from_toml("environment = \"development\"")
        .unwrap()
        .validate()
        .unwrap()
        .admin_token_hash
        .is_none());
}

#[test]
fn dpop_nonce_settings() {
    let settings = Config::from_toml("environment = \"development\"")
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(settings.token_dpop_nonce, NoncePolicy::Optional);
    assert_eq!(settings.resource_dpop_nonce, NoncePolicy::Optional);
    let text =
        "environment = \"development\"\n[tokens]\ndpop_nonce = \"required\"\n[resource]\ndpop_nonce = \"required\"";
    let settings = Config::from_toml(text).unwrap().validate().unwrap();
    assert_eq!(settings.token_dpop_nonce, NoncePolicy::Required);
    assert_eq!(settings.resource_dpop_nonce, NoncePolicy::Required);
    let err = Config::from_toml("[tokens]\ndpop_nonce = \"sometimes\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokens.dpop_nonce"), "{err}");
    let err = Config::from_toml("[resource]\nnonce = \"required\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("nonce"), "{err}");
}

#[test]
fn bad_listen_address_is_named() {
    let err = Config::from_toml("environment = \"development\"\nlisten = \"localhost\"")
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("`listen`"), "{err}");
}
