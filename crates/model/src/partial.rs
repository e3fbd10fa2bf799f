//! Outputs written under a temporary name and renamed into place once complete, so that no
//! reader ever sees half a file, and leftovers of a killed writer are removed by the next one.
//!
//! Each temporary path `T` (a file or a directory) has a sibling `T.lock` that its writer holds
//! locked (an advisory lock of the OS, released when the process dies, however it dies). A
//! writer sweeps the folder it writes into before it starts: a `*.partial.lock` it can lock
//! belongs to a writer that is gone, so the lock file and its `T` are removed. Two writers never
//! share a temporary path (the name holds the process id and the time).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The suffix of a temporary path; its lock file adds `.lock`.
const SUFFIX: &str = ".partial";

/// A temporary path and the lock that says its writer is alive. Removed when dropped unless
/// committed.
#[derive(Debug)]
pub(crate) struct Partial {
    /// Where to write.
    pub path: PathBuf,
    lock_path: PathBuf,
    _lock: File,
    committed: bool,
}

impl Partial {
    /// A fresh temporary path in `dir` (created if missing) whose name starts with `stem`, after
    /// removing what killed writers left in `dir`. Nothing is created at the path itself.
    ///
    /// # Errors
    /// [`Error::Io`] naming the lock file when it cannot be created or locked.
    pub fn in_dir(dir: &Path, stem: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        sweep(dir);
        let path = dir.join(format!("{stem}.{}{SUFFIX}", unique_suffix()));
        let lock_path = lock_of(&path);
        // A folder that cannot take the lock file cannot take the output either: name the folder.
        let lock = File::create(&lock_path).map_err(|e| Error::io(dir, e))?;
        lock.lock().map_err(|e| Error::io(dir, e))?;
        Ok(Self {
            path,
            lock_path,
            _lock: lock,
            committed: false,
        })
    }

    /// A temporary path beside `target` (same folder, so the rename stays on one file system).
    ///
    /// # Errors
    /// As [`Partial::in_dir`].
    pub fn beside(target: &Path) -> Result<Self> {
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        Self::in_dir(dir, &name)
    }

    /// Renames the finished output to `to`.
    ///
    /// # Errors
    /// [`Error::Io`] naming `to` when the rename fails (the temporary output is then removed).
    pub fn commit(mut self, to: &Path) -> Result<()> {
        std::fs::rename(&self.path, to).map_err(|e| Error::io(to, e))?;
        self.committed = true;
        Ok(())
    }

    /// Renames the finished output to `to` when nothing is there yet; `false` when something is
    /// (or appeared meanwhile), so that the caller tries another name.
    pub fn commit_if_free(&mut self, to: &Path) -> bool {
        let moved = !to.exists() && std::fs::rename(&self.path, to).is_ok();
        self.committed |= moved;
        moved
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            remove(&self.path);
        }
        std::fs::remove_file(&self.lock_path).ok();
    }
}

/// Removes the temporary outputs in `dir` whose writers are gone. Best effort: what cannot be
/// read or removed is left for the next writer.
pub(crate) fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(output) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".lock"))
            .filter(|n| is_ours(n))
        else {
            continue;
        };
        let lock_path = entry.path();
        // Only an empty regular file is a lock of ours (opening a FIFO would block).
        let is_lock =
            std::fs::symlink_metadata(&lock_path).is_ok_and(|m| m.is_file() && m.len() == 0);
        if !is_lock {
            continue;
        }
        let Ok(lock) = File::options().write(true).open(&lock_path) else {
            continue;
        };
        // Locked: its writer is alive. Free: the writer died, or is between creating the lock
        // file and locking it; such a writer waits for this lock and then writes on.
        if lock.try_lock().is_ok() {
            tracing::info!(path = %dir.join(output).display(), "removing what a stopped writer left");
            remove(&dir.join(output));
            std::fs::remove_file(&lock_path).ok();
        }
    }
}

/// Whether `name` has the shape of a temporary output's name: `<stem>.<pid>-<nanos>.partial`.
fn is_ours(name: &str) -> bool {
    name.strip_suffix(SUFFIX)
        .and_then(|n| n.rsplit_once('.'))
        .and_then(|(_, unique)| unique.split_once('-'))
        .is_some_and(|(pid, nanos)| {
            !pid.is_empty()
                && !nanos.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && nanos.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Removes a file or a directory tree, whichever `path` is.
fn remove(path: &Path) {
    if path.is_dir() {
        std::fs::remove_dir_all(path).ok();
    } else {
        std::fs::remove_file(path).ok();
    }
}

fn lock_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// A name part no other process or call uses at the same time: the process id and the time.
pub(crate) fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("augur-partial-{name}-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn a_live_writers_output_is_kept_and_a_dead_ones_removed() {
        let dir = scratch("sweep");
        let live = Partial::beside(&dir.join("a.parquet")).expect("partial");
        std::fs::write(&live.path, b"half").expect("write");
        // What a killed writer leaves: the output and an unlocked lock file.
        let dead = dir.join("b.parquet.1-2.partial");
        std::fs::create_dir_all(&dead).expect("dead dir");
        std::fs::write(dead.join("x"), b"x").expect("dead file");
        std::fs::write(lock_of(&dead), b"").expect("dead lock");
        // Files of the user's that look alike are never touched: no lock, a lock that is not
        // empty, or a name without the process id and time.
        std::fs::write(dir.join("notes.partial"), b"mine").expect("user file");
        std::fs::write(dir.join("report.9-9.partial"), b"mine").expect("user file");
        std::fs::write(dir.join("report.9-9.partial.lock"), b"mine").expect("user lock");
        std::fs::create_dir_all(dir.join("dl.partial")).expect("user dir");
        std::fs::write(dir.join("dl.partial.lock"), b"").expect("user lock");

        sweep(&dir);
        assert!(live.path.exists(), "a locked output is in use");
        assert!(!dead.exists() && !lock_of(&dead).exists());
        for mine in [
            "notes.partial",
            "report.9-9.partial",
            "report.9-9.partial.lock",
            "dl.partial",
        ] {
            assert!(dir.join(mine).exists(), "{mine} was removed");
        }

        let target = dir.join("a.parquet");
        live.commit(&target).expect("commit");
        assert_eq!(std::fs::read(&target).expect("read"), b"half");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 6, "the target and the user's files: {left:?}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_uncommitted_output_is_removed_with_its_lock() {
        let dir = scratch("drop");
        let path = {
            let p = Partial::in_dir(&dir, ".version").expect("partial");
            std::fs::create_dir_all(p.path.join("inner")).expect("tree");
            p.path.clone()
        };
        assert!(!path.exists() && !lock_of(&path).exists());
        std::fs::remove_dir_all(&dir).ok();
    }
}
