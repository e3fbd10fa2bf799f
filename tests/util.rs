//! Helpers: run the real `augur` binary in a fresh temporary directory, write Parquet fixtures.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::PageIndexPolicy;

/// A scratch directory that disappears with the test.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Writes a text file (creating parent folders).
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    /// A command for the `augur` binary, run in this directory with a clean environment.
    pub fn augur(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_augur"));
        cmd.current_dir(self.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("AUGUR_") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd
    }
}

/// Runs a command and returns its output, printing it for failing tests.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run augur");
    eprintln!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(101), "augur panicked");
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes named columns as one Parquet file.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("batch");
    let file = File::create(path).expect("create parquet");
    let mut writer = ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write batch");
    writer.close().expect("close");
}

/// Every record batch of a Parquet file, its page indexes read too: a file that has them must
/// have the offset index of every column.
pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).expect("open parquet");
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
    ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .expect("reader")
        .build()
        .expect("build")
        .map(|b| b.expect("batch"))
        .collect()
}

/// A column of a batch by name.
pub fn col<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column `{name}`"))
}
