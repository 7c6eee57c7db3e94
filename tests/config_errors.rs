//! Configuration errors stop mxdesk before it binds anything: exit code 64
//! (EX_USAGE) and a message that names the key.

use std::net::TcpListener;
use std::process::Command;

fn run_with_config(text: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mxdesk.toml");
    std::fs::write(&path, text).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_mxdesk"))
        .arg("serve")
        .env("MXDESK_CONFIG", &path)
        .current_dir(dir.path())
        .output()
        .expect("run mxdesk");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A free port, so the test can check that nothing was bound on it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn bad_configs_exit_64_naming_the_key_before_binding() {
    let port = free_port();
    let cases = [
        (
            format!("[smtp]\nlisten = [\"127.0.0.1:{port}\"]\nlisten_on = 1\n"),
            "listen_on",
        ),
        (
            format!("[smtp]\nlisten = [\"127.0.0.1:{port}\"]\nmax_message_size = \"big\"\n"),
            "max_message_size",
        ),
        (
            format!("domains = []\n[smtp]\nlisten = [\"127.0.0.1:{port}\"]\n"),
            "domains",
        ),
        (
            format!("[smtp]\nlisten = [\"127.0.0.1:{port}\"]\ncert = \"x.pem\"\n"),
            "smtp.cert",
        ),
        (
            format!("[smtp]\nlisten = [\"127.0.0.1:{port}\"]\n[outbound]\nrelay = \"a b\"\n"),
            "outbound.relay",
        ),
        (
            format!("[smtp]\nlisten = [\"127.0.0.1:{port}\"]\n[api]\npublic_url = \"ftp://x\"\n"),
            "api.public_url",
        ),
        ("this is not toml".to_string(), "mxdesk.toml"),
    ];
    for (config, key) in cases {
        let (code, stdout, stderr) = run_with_config(&config);
        assert_eq!(code, Some(64), "{config:?}: stderr {stderr}");
        assert!(
            stderr.contains(key),
            "{config:?}: stderr does not name {key}: {stderr}"
        );
        assert!(
            !stdout.contains("listening"),
            "{config:?} bound a port: {stdout}"
        );
        // Nothing holds the configured port.
        TcpListener::bind(("127.0.0.1", port)).expect("port still free");
    }
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_mxdesk"))
        .args(["serve", "--config", "/nonexistent/mxdesk.toml"])
        .output()
        .expect("run mxdesk");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/mxdesk.toml"), "{stderr}");
}
