//! Loading: Parquet exports → [`History`] plus a [`QualityReport`].
//!
//! Each table streams as Arrow record batches, projected to the mapped columns. Row groups decode
//! in parallel (a window of a few per core, so memory stays bounded by that window and the growing
//! columns), then pass in file order through one sequential step that applies the rules and maps
//! ids to dense indexes in file order; once every table is in, the ids are numbered again in
//! the order of the external ids (`canonical`), so the same rows in another order load alike.

mod assemble;
mod canonical;
mod decode;
mod source;

use rayon::prelude::*;

use crate::config::Config;
use crate::contract::TableKind;
use crate::error::{Error, Result};
use crate::history::History;
use crate::quality::{QualityReport, TableReport};
use crate::time::TimeReader;

pub use assemble::Loader;

/// Rows read so far, for progress displays.
pub type Progress<'a> = &'a (dyn Fn(TableKind, u64) + Sync);

/// Loads every configured table. Fatal data problems are listed in the report (see
/// [`QualityReport::is_fatal`]); unreadable files and schema mismatches are errors.
pub fn load(config: &Config) -> Result<(History, QualityReport)> {
    load_with_progress(config, &|_, _| {})
}

/// [`load`], calling `progress` after each decoded row group with the table and its rows so far.
pub fn load_with_progress(
    config: &Config,
    progress: Progress<'_>,
) -> Result<(History, QualityReport)> {
    load_inner(config, None, progress)
}

/// [`load`], keeping only e-mail events of the given kinds: for readers that need a few kinds
/// of a large table (say, unsubscribes), without the cost of storing and sorting the rest.
/// The quality report then describes only the rows kept.
pub fn load_email_kinds(
    config: &Config,
    kinds: &[crate::EmailEventKind],
) -> Result<(History, QualityReport)> {
    load_inner(config, Some(kinds.to_vec()), &|_, _| {})
}

/// Whether a contact was erased, by its id and (on the contacts table) its address: its rows
/// are left out of the history and counted in the report as `erased`.
pub type Erased = std::sync::Arc<dyn Fn(&str, Option<&str>) -> bool + Send + Sync>;

/// [`load`], adding rows that arrived after the exports (events posted as they happen): each is
/// sorted in with its table's rows, exact duplicates of exported rows are dropped, and contact
/// changes apply on top of the contacts table. The report notes how many live rows each table
/// took.
pub fn load_with_live(
    config: &Config,
    live: &[crate::LiveRow],
    erased: Option<crate::Erased>,
) -> Result<(History, QualityReport)> {
    let mut loader = Loader::new(config)?;
    loader.live = live.to_vec();
    loader.erased = erased;
    run_tables(config, loader, &|_, _| {})
}

fn load_inner(
    config: &Config,
    email_kinds: Option<Vec<crate::EmailEventKind>>,
    progress: Progress<'_>,
) -> Result<(History, QualityReport)> {
    let mut loader = Loader::new(config)?;
    loader.email_kinds = email_kinds;
    run_tables(config, loader, progress)
}

fn run_tables(
    config: &Config,
    mut loader: Loader,
    progress: Progress<'_>,
) -> Result<(History, QualityReport)> {
    let tables = config.configured_tables();
    if tables.is_empty() {
        return Err(Error::NoTables {
            hint: String::new(),
        });
    }
    for kind in tables {
        let report = load_table(config, kind, &mut loader, progress)?;
        loader.report.tables.push(report);
    }
    let live = std::mem::take(&mut loader.live);
    let erased = loader.erased.clone();
    let (mut history, report) = loader.finish();
    // A contact change posted for an erased contact does not bring it back.
    let live = live
        .into_iter()
        .filter(|row| !erased.as_ref().is_some_and(|f| f(row.contact_id(), None)));
    for row in live {
        if let crate::LiveRow::Contact {
            contact_id,
            email,
            first_name,
            country,
            timezone,
            created_at,
            email_consent,
        } = row
        {
            history.contacts.upsert(
                &contact_id,
                email.as_deref(),
                first_name.as_deref(),
                country.as_deref(),
                timezone.as_deref(),
                created_at,
                email_consent,
                config.default_contact_zone(),
            );
        }
    }
    Ok((history, report))
}

fn load_table(
    config: &Config,
    kind: TableKind,
    loader: &mut Loader,
    progress: Progress<'_>,
) -> Result<TableReport> {
    let table = config.tables.get(kind);
    let Some(root) = table.path.as_deref() else {
        return Ok(TableReport::new(kind));
    };
    let paths = source::list_files(root, kind)?;
    let files = paths
        .iter()
        .map(|p| source::open_file(root, p, kind, table))
        .collect::<Result<Vec<_>>>()?;
    let mut report = TableReport::new(kind);
    report.files = paths;

    let times = TimeReader::new(
        config.naive_zone(kind),
        table.timestamp_format.clone(),
        table.timestamp_unit,
    );
    let units: Vec<(usize, usize)> = files
        .iter()
        .enumerate()
        .flat_map(|(f, file)| (0..file.row_groups()).map(move |rg| (f, rg)))
        .collect();
    loader.reserve(kind, files.iter().map(|f| f.rows()).sum());
    let window = 2 * rayon::current_num_threads().max(1);
    let mut rows = 0u64;
    let started = std::time::Instant::now();
    let decode = |chunk: &[(usize, usize)]| -> Vec<Result<Vec<decode::Decoded>>> {
        chunk
            .par_iter()
            .map(|&(f, rg)| {
                decode::decode_row_group(&files[f], rg, kind, &times, config.data.batch_size)
            })
            .collect()
    };
    // The sequential step absorbs one window of row groups while the next window decodes on
    // the other cores: decoding is then hidden behind the id mapping instead of adding to it.
    let mut absorb = |decoded: Vec<Result<Vec<decode::Decoded>>>| -> Result<()> {
        for batches in decoded {
            for batch in batches? {
                rows += batch.rows as u64;
                loader.absorb(kind, &batch, &mut report);
            }
            progress(kind, rows);
        }
        Ok(())
    };
    let mut pending = Vec::new();
    for chunk in units.chunks(window) {
        let waiting = std::mem::take(&mut pending);
        let (decoded, absorbed) = rayon::join(|| decode(chunk), || absorb(waiting));
        absorbed?;
        pending = decoded;
    }
    absorb(pending)?;
    loader.absorb_live(kind, &mut report);
    report.rows_read = rows;
    let read = started.elapsed();
    loader.finish_table(kind, &mut report);
    tracing::debug!(
        table = kind.name(),
        rows,
        read_seconds = read.as_secs_f64(),
        finish_seconds = (started.elapsed() - read).as_secs_f64(),
        "table loaded"
    );
    Ok(report)
}

/// Loads with [`load`] and fails on fatal data problems, for callers that need usable data.
pub fn load_checked(config: &Config) -> Result<(History, QualityReport)> {
    let (history, report) = load(config)?;
    if report.is_fatal() {
        return Err(Error::Unusable {
            problems: report.fatal.join("; "),
        });
    }
    Ok((history, report))
}
