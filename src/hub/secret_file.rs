//! The file `hubgate hub register` writes a client secret to: created with mode 0600 from the
//! first byte (never briefly readable by others), reserved *before* Hub is asked so a file
//! problem cannot strand a freshly registered secret, and removed again if nothing is written.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{0}: already exists (pass --force to replace it)")]
    Exists(PathBuf),
    #[error("{0}: left over from an interrupted run; remove it and try again")]
    Leftover(PathBuf),
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
}

/// A secret file being written: `file` is open at `written`, which is `path` itself or,
/// when replacing an existing file, a temporary next to it renamed over `path` at the end.
#[derive(Debug)]
pub struct SecretFile {
    file: File,
    path: PathBuf,
    written: PathBuf,
    committed: bool,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SecretFileError + '_ {
    move |cause| SecretFileError::Io {
        path: path.to_owned(),
        cause,
    }
}

/// Opens a new file with mode 0600 (less under the umask); an existing one is an error.
fn create_private(path: &Path) -> Result<File, SecretFileError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|cause| match cause.kind() {
            io::ErrorKind::AlreadyExists => SecretFileError::Exists(path.to_owned()),
            _ => SecretFileError::Io {
                path: path.to_owned(),
                cause,
            },
        })
}

impl SecretFile {
    /// Claims `path`. Without `replace`, an existing file is refused. With it, the secret
    /// goes to a fresh 0600 file that replaces `path` on commit, so the old file's mode
    /// never applies to the new secret.
    pub fn reserve(path: &Path, replace: bool) -> Result<SecretFile, SecretFileError> {
        let written = if replace {
            temporary_next_to(path)
        } else {
            path.to_owned()
        };
        let file = create_private(&written).map_err(|error| match error {
            SecretFileError::Exists(temporary) if replace => SecretFileError::Leftover(temporary),
            other => other,
        })?;
        Ok(SecretFile {
            file,
            path: path.to_owned(),
            written,
            committed: false,
        })
    }

    /// Writes the secret (no line break), flushes it to disk, and puts it at `path`.
    pub fn commit(mut self, secret: &Secret) -> Result<(), SecretFileError> {
        self.file
            .write_all(secret.expose().as_bytes())
            .and_then(|()| self.file.sync_all())
            .map_err(io_error(&self.written))?;
        if self.written != self.path {
            std::fs::rename(&self.written, &self.path).map_err(io_error(&self.path))?;
        }
        self.committed = true;
        Ok(())
    }
}

/// `dir/.name.hubgate-tmp`: same directory, so the rename is atomic.
fn temporary_next_to(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.hubgate-tmp"))
}

impl Drop for SecretFile {
    /// Nothing was written (Hub refused, or the write failed): remove what was created.
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.written);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_new_file_is_0600_and_holds_exactly_the_secret() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        let reserved = SecretFile::reserve(&path, false).expect("reserved");
        assert_eq!(mode(&path), 0o600);
        reserved.commit(&Secret::new("s3cret")).expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "s3cret");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn an_existing_file_is_refused_unless_replaced_and_then_becomes_0600() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let refused = SecretFile::reserve(&path, false).expect_err("exists");
        assert!(matches!(refused, SecretFileError::Exists(_)), "{refused}");
        assert!(refused.to_string().contains("--force"), "{refused}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        let reserved = SecretFile::reserve(&path, true).expect("reserved");
        reserved.commit(&Secret::new("new")).expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        assert_eq!(mode(&path), 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }

    #[test]
    fn an_uncommitted_reservation_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        drop(SecretFile::reserve(&path, false).expect("reserved"));
        assert!(!path.exists());
        std::fs::write(&path, "old").expect("write");
        drop(SecretFile::reserve(&path, true).expect("reserved"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
