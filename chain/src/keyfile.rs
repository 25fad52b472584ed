//! Key files: a secret key's 32-byte seed as one line of hex, readable by its owner only (0600).

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::fixed_bytes::{HexError, parse_hex};
use crate::keys::SecretKey;

/// A key file is 64 hex chars and a newline; anything much longer is not a key file.
const MAX_KEY_FILE_BYTES: u64 = 256;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// No file at the path.
    #[error("key file {0} does not exist")]
    Missing(PathBuf),
    /// The file exists but could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error(
        "key file {path} has mode {mode:o}; it must not be accessible to group or others (chmod 600)"
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The content is not 64 hex characters.
    #[error("key file {path}: {reason}")]
    BadContent {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: HexError,
    },
    /// The file is far longer than a key.
    #[error("key file {path} is {len} bytes; a key file holds 64 hex chars")]
    TooLong {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// Refused to replace an existing key.
    #[error("key file {0} already exists; refusing to overwrite a key")]
    Exists(PathBuf),
}

/// Writes `key` to a new file at `path` with mode 0600. Never overwrites an existing file.
pub fn write_key_file(path: &Path, key: &SecretKey) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists(path.to_path_buf())
        } else {
            io(e)
        }
    })?;
    file.write_all(format!("{}\n", hex::encode(key.seed())).as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a key written by [`write_key_file`], refusing files that others can read.
pub fn read_key_file(path: &Path) -> Result<SecretKey, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            KeyFileError::Missing(path.to_path_buf())
        } else {
            io(e)
        }
    })?;
    if !meta.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyFileError::TooLong {
            path: path.to_path_buf(),
            len: meta.len(),
        });
    }
    let mut text = String::new();
    fs::File::open(path)
        .map_err(io)?
        .take(MAX_KEY_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(io)?;
    let seed = parse_hex::<32>(&text).map_err(|reason| KeyFileError::BadContent {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(SecretKey::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node_key");
        let key = SecretKey::generate();
        write_key_file(&path, &key).unwrap();
        #[cfg(unix)]
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_key_file(&path).unwrap().public(), key.public());
        assert!(matches!(
            write_key_file(&path, &key),
            Err(KeyFileError::Exists(_))
        ));
    }

    #[test]
    fn each_bad_file_gets_its_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        assert!(matches!(
            read_key_file(&missing),
            Err(KeyFileError::Missing(_))
        ));

        let short = dir.path().join("short");
        fs::write(&short, "abcd\n").unwrap();
        fs::set_permissions(&short, fs::Permissions::from_mode(0o600)).unwrap();
        let err = read_key_file(&short).unwrap_err();
        assert!(
            matches!(
                err,
                KeyFileError::BadContent {
                    reason: HexError::Length {
                        expected: 64,
                        got: 4
                    },
                    ..
                }
            ),
            "{err}"
        );

        let open = dir.path().join("open");
        fs::write(&open, format!("{}\n", "11".repeat(32))).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key_file(&open).unwrap_err();
        assert!(matches!(err, KeyFileError::TooOpen { mode: 0o644, .. }));
        assert!(err.to_string().contains("chmod 600"));

        let long = dir.path().join("long");
        fs::write(&long, "1".repeat(10_000)).unwrap();
        fs::set_permissions(&long, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_key_file(&long),
            Err(KeyFileError::TooLong { .. })
        ));

        let garbage = dir.path().join("garbage");
        fs::write(&garbage, "zz".repeat(32)).unwrap();
        fs::set_permissions(&garbage, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_key_file(&garbage),
            Err(KeyFileError::BadContent {
                reason: HexError::NotHex(_),
                ..
            })
        ));

        let unreadable = dir.path().join("dir");
        fs::create_dir(&unreadable).unwrap();
        fs::set_permissions(&unreadable, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            read_key_file(&unreadable),
            Err(KeyFileError::Io { .. })
        ));
    }
}
