//! The state file, `{admin.state_dir}/revocations.state`: a header line with the SHA-256 and
//! length of the JSON that follows, then the revocations (fingerprints and logins, no raw
//! token). Written atomically — a temporary file, fsync, rename, fsync of the directory — and
//! checked on load: a file that does not match its header (a torn or edited write) is an
//! error, never an empty set.

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::Revocation;
use crate::auth::cache::hex;

pub const FILE_NAME: &str = "revocations.state";
const MAGIC: &str = "hubgate-revocations 1";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error(
        "{path} is damaged ({why}); hubgate will not start without its revocations: restore \
         the file, or move it away to start with none"
    )]
    Damaged { path: String, why: String },
    #[error("cannot write {path}: {cause}")]
    Write { path: String, cause: std::io::Error },
}

/// Where revocations are kept in `dir`.
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(dir: &Path) -> StateFile {
        StateFile {
            path: dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The revocations kept; none when the file does not exist yet.
    pub fn load(&self) -> Result<Vec<Revocation>, StateError> {
        let shown = self.path.display().to_string();
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(cause) => return Err(StateError::Read { path: shown, cause }),
        };
        parse(&bytes).map_err(|why| StateError::Damaged { path: shown, why })
    }

    /// Replaces the file with `revocations`, atomically.
    pub fn save(&self, revocations: &[Revocation]) -> Result<(), StateError> {
        let write_error = |cause| StateError::Write {
            path: self.path.display().to_string(),
            cause,
        };
        let body = serde_json::to_vec(revocations).map_err(|e| write_error(e.into()))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &body);
        let header = format!(
            "{MAGIC} sha256={} length={}\n",
            hex(digest.as_ref()),
            body.len()
        );
        // A fresh temporary name each time (two writers never share one), readable by the
        // service user only: the file names users and the hashes of leaked tokens.
        let temporary = self
            .path
            .with_extension(format!("state.{:016x}.tmp", fastrand::u64(..)));
        let mut contents = header.into_bytes();
        contents.extend_from_slice(&body);
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(&contents)?;
            file.sync_all()?;
            fs::rename(&temporary, &self.path)?;
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written.map_err(write_error)
    }
}

/// The header line, then JSON that matches its length and digest.
fn parse(bytes: &[u8]) -> Result<Vec<Revocation>, String> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| "header is not text")?;
    let body = &bytes[newline + 1..];
    let rest = header
        .strip_prefix(MAGIC)
        .ok_or("not a hubgate revocations file")?;
    let mut digest = None;
    let mut length = None;
    for field in rest.split_whitespace() {
        match field.split_once('=') {
            Some(("sha256", value)) => digest = Some(value),
            Some(("length", value)) => length = value.parse::<usize>().ok(),
            _ => return Err(format!("unknown header field {field:?}")),
        }
    }
    let (Some(digest), Some(length)) = (digest, length) else {
        return Err("header lacks sha256 or length".into());
    };
    if body.len() != length {
        return Err(format!("{} bytes of {length}", body.len()));
    }
    let actual = ring::digest::digest(&ring::digest::SHA256, body);
    if hex(actual.as_ref()) != digest {
        return Err("content does not match its sha256".into());
    }
    let revocations: Vec<Revocation> =
        serde_json::from_slice(body).map_err(|e| format!("content is not revocations: {e}"))?;
    for (index, revocation) in revocations.iter().enumerate() {
        super::validate(revocation).map_err(|why| format!("revocation {index} has {why}"))?;
    }
    Ok(revocations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::Target;

    fn sample() -> Vec<Revocation> {
        vec![Revocation {
            id: "0123456789abcdef".into(),
            target: Target::Login("alice".into()),
            reason: Some("left the company".into()),
            created: 1_700_000_000,
            expires: Some(1_800_000_000),
        }]
    }

    #[test]
    fn a_saved_file_loads_back_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateFile::new(dir.path());
        assert!(state.load().unwrap().is_empty());
        state.save(&sample()).unwrap();
        assert_eq!(state.load().unwrap(), sample());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["revocations.state"], "a temporary file was left");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(state.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn torn_or_edited_files_are_damaged_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateFile::new(dir.path());
        state.save(&sample()).unwrap();
        let whole = fs::read(state.path()).unwrap();
        for cut in [0, 10, whole.len() / 2, whole.len() - 1] {
            fs::write(state.path(), &whole[..cut]).unwrap();
            let loaded = state.load();
            assert!(
                matches!(loaded, Err(StateError::Damaged { .. })),
                "cut at {cut}: {loaded:?}"
            );
        }
        let edited = String::from_utf8(whole).unwrap().replace("alice", "alicf");
        fs::write(state.path(), edited).unwrap();
        assert!(matches!(state.load(), Err(StateError::Damaged { .. })));
    }
}
