//! The build scripts fail with a clear hint where a fresh machine lacks a
//! piece: a Python without `venv`/`ensurepip` (Debian's python3 without
//! python3-venv) stops test-python.sh and package.sh before anything else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

mod support;

/// A `python3` that cannot create virtualenvs: every call fails, as
/// `python3 -c 'import venv, ensurepip'` does without python3-venv.
fn python_without_venv(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("python3");
    std::fs::write(
        &path,
        "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'ensurepip'\" >&2\nexit 1\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

#[cfg(unix)]
#[test]
fn a_python_without_venv_gets_the_python3_venv_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let python = python_without_venv(tmp.path());
    for (script, venv_var) in [
        ("scripts/test-python.sh", "AGENTRIAGE_PY_VENV"),
        ("scripts/package.sh", "AGENTRIAGE_PACKAGE_VENV"),
    ] {
        let venv = tmp.path().join(format!("venv-{venv_var}"));
        let out = Command::new("bash")
            .arg(support::repo().join(script))
            .env("PYTHON", &python)
            .env(venv_var, &venv)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{script}: {err}");
        assert!(err.contains("install python3-venv"), "{script}: {err}");
        assert!(!venv.exists(), "{script} left a half-made virtualenv");
    }
}
