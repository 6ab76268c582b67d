//! The systemd unit in systemd/hubgate.service: the settings hubgate relies on, and a clean
//! `systemd-analyze verify` where the tool is installed.

use std::process::Command;

const UNIT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/systemd/hubgate.service"
));

#[test]
fn unit_has_the_settings_hubgate_relies_on() {
    let lines: Vec<&str> = UNIT.lines().map(str::trim).collect();
    for setting in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=hubgate",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(lines.contains(&setting), "unit lacks the line {setting}");
    }
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: skipping `systemd-analyze verify`");
        return;
    }

    // verify checks that executables exist: point the unit at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("hubgate.service");
    std::fs::write(
        &unit,
        UNIT.replace("/usr/bin/hubgate", env!("CARGO_BIN_EXE_hubgate")),
    )
    .unwrap();

    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "systemd-analyze verify failed: {stderr}"
    );
    // Unknown keys and bad values are only warnings; lines about other units are not ours.
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("hubgate.service"))
        .collect();
    assert!(
        warnings.is_empty(),
        "warnings about the unit: {warnings:#?}"
    );
}
