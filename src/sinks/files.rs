//! Atomic file writes for the file sinks (Kailash registry file, server.json): a temp file
//! in the same directory, written and fsynced, then renamed over the target, then the
//! directory fsynced. A reader sees the old file or the new one, never half of either, and
//! a crash leaves at most a stray temp file (`.<name>.mcp-scout-tmp`), never a torn target.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::SinkError;

/// The temp file next to `path`.
fn temp_of(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.mcp-scout-tmp"))
}

/// Write `bytes` to `path` atomically, creating its directory when missing. Blocking.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let fail = |what: &str, e: std::io::Error| {
        SinkError::transient(format!("cannot {what} {}: {e}", path.display()))
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
    let temp = temp_of(path);
    let written = (|| {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(fail("write", e));
    }
    if let Err(e) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(fail("replace", e));
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::TempDir;

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temp() {
        let dir = TempDir::new("atomic");
        let path = dir.join("a/b/servers.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("servers.json")]);
    }

    #[test]
    fn a_failed_write_names_the_file() {
        let dir = TempDir::new("atomic-ro");
        std::fs::write(dir.join("file"), b"x").unwrap();
        let e = write_atomic(&dir.join("file/inside.json"), b"x").unwrap_err();
        assert!(e.to_string().contains("file/inside.json"), "{e}");
    }
}
