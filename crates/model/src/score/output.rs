//! The Parquet file batch scoring writes. Arrow's encoders write every column but the send-time
//! profile. For a list column they compute repetition and definition levels, gather values and
//! run-length encode the levels one value at a time; with 168 floats per contact that cost more
//! than scoring the contact. Every profile has exactly 168 values, so every row's levels are the
//! same two runs: the profile column's pages are built here from those runs and the floats as
//! they are (Parquet's PLAIN encoding of a float is its little-endian bytes).

use std::io::BufWriter;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use crate::error::{Error, Result};
use crate::send_time::HOURS;

/// The name of the send-time profile column.
pub(super) const PROFILE: &str = "send_time_profile";

/// Profiles per data page: 688 KB of floats, near the 1 MB pages Parquet writers usually cut.
const PROFILES_PER_PAGE: usize = 1_024;

/// Writes the chunks it receives as row groups of one Parquet file at `partial`, finished only
/// when the end (`None`) arrives, and hands each chunk's profile buffer back through
/// `return_buffer` once written. Errors name `path`, the file the user asked for.
pub(super) fn write_chunks(
    partial: &std::path::Path,
    path: &std::path::Path,
    chunks: &Receiver<Option<RecordBatch>>,
    return_buffer: &Sender<Vec<f32>>,
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| Error::Write {
        path: path.into(),
        reason: e.to_string(),
    };
    let mut writer: Option<OutputWriter> = None;
    loop {
        let batch = match chunks.recv() {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(_) => return Err(err(&"scoring stopped before the last contact")),
        };
        let w = match &mut writer {
            Some(w) => w,
            None => {
                // The directory asked for is what the user can fix: name the output path.
                let file = std::fs::File::create(partial).map_err(|e| Error::io(path, e))?;
                writer.insert(OutputWriter::new(file, batch.schema()).map_err(|e| err(&e))?)
            }
        };
        // No contacts still makes a valid file, but not a row group of zero rows, which some
        // readers refuse.
        if batch.num_rows() > 0 {
            w.write(&batch).map_err(|e| err(&e))?;
        }
        if let Some(buffer) = profile_buffer(batch) {
            return_buffer.send(buffer).ok();
        }
    }
    match writer {
        Some(w) => w.file.close().map(|_| ()).map_err(|e| err(&e)),
        None => Err(err(&"no rows to write")),
    }
}

/// The output file, a row group per chunk.
struct OutputWriter {
    file: SerializedFileWriter<BufWriter<std::fs::File>>,
    encoders: ArrowRowGroupWriterFactory,
    /// The profile column's leaf.
    profile: ColumnDescPtr,
    /// Memory the profile column is encoded in, kept from row group to row group.
    profile_buffers: ProfileBuffers,
}

impl OutputWriter {
    fn new(file: std::fs::File, schema: SchemaRef) -> parquet::errors::Result<Self> {
        // Parquet's own buffer is 8 KB; a larger one cuts the system calls of writing ~1 KB
        // per contact.
        let file = BufWriter::with_capacity(1 << 20, file);
        // Scores are dense floats: dictionary encoding would only cost time. So would the
        // minimum and maximum of list items (product ids, shares, reasons) that no query
        // prunes by; single-valued columns keep theirs.
        let mut properties = WriterProperties::builder().set_dictionary_enabled(false);
        let leaves = parquet::arrow::ArrowSchemaConverter::new().convert(&schema)?;
        for leaf in leaves.columns().iter().filter(|c| c.max_rep_level() > 0) {
            properties = properties
                .set_column_statistics_enabled(leaf.path().clone(), EnabledStatistics::None);
        }
        let properties = properties.build();
        let (file, encoders) =
            ArrowWriter::try_new(file, schema, Some(properties))?.into_serialized_writer()?;
        let profile = file
            .schema_descr()
            .columns()
            .iter()
            .find(|c| c.path().parts().first().is_some_and(|p| p == PROFILE))
            .filter(|c| c.physical_type() == parquet::basic::Type::FLOAT && c.max_rep_level() == 1)
            .cloned()
            .ok_or_else(|| general_error("the output has no list of floats for profiles"))?;
        Ok(Self {
            file,
            encoders,
            profile,
            profile_buffers: ProfileBuffers::default(),
        })
    }

    /// Writes `batch` as one row group.
    fn write(&mut self, batch: &RecordBatch) -> parquet::errors::Result<()> {
        let schema = batch.schema();
        // One leaf per column: the output has lists of scalars, never structs.
        // The next row group's index: one per row group flushed so far.
        let index = self.file.flushed_row_groups().len();
        let encoders = self.encoders.create_column_writers(index)?;
        let mut row_group = self.file.next_row_group()?;
        for ((field, column), mut encoder) in
            schema.fields().iter().zip(batch.columns()).zip(encoders)
        {
            if field.name() == PROFILE {
                let values = profile_values(column)?;
                let close = self.profile_buffers.encode(&self.profile, values)?;
                row_group.append_column(&EncodedChunk(&self.profile_buffers.chunk), close)?;
            } else {
                for leaf in compute_leaves(field, column)? {
                    encoder.write(&leaf)?;
                }
                encoder.close()?.append_to_row_group(&mut row_group)?;
            }
        }
        row_group.close()?;
        Ok(())
    }
}

/// The floats of a profile column: every row a list of exactly 168 present values.
fn profile_values(column: &ArrayRef) -> parquet::errors::Result<&[f32]> {
    let lists = column
        .as_list_opt::<i32>()
        .filter(|l| l.null_count() == 0 && l.values().null_count() == 0)
        .filter(|l| {
            l.offsets()
                .iter()
                .enumerate()
                .all(|(i, o)| usize::try_from(*o).is_ok_and(|o| o == i * HOURS))
        })
        .ok_or_else(|| general_error("a send-time profile is not 168 present floats"))?;
    let values = lists
        .values()
        .as_primitive_opt::<Float32Type>()
        .ok_or_else(|| general_error("send-time profiles are not floats"))?;
    Ok(&values.values()[..lists.len() * HOURS])
}

/// Where the profile column chunk of a row group is encoded: the pages' contents, then the
/// pages with their headers, as the file will hold them.
#[derive(Default)]
struct ProfileBuffers {
    pages: Vec<u8>,
    chunk: Vec<u8>,
}

impl ProfileBuffers {
    /// Encodes the profile column chunk of one row group into `self.chunk` (pages from offset
    /// 0) and returns what the row group needs to know of it.
    fn encode(
        &mut self,
        leaf: &ColumnDescPtr,
        values: &[f32],
    ) -> parquet::errors::Result<ColumnCloseResult> {
        let max_def = u8::try_from(leaf.max_def_level())
            .map_err(|_| general_error("the profile column nests too deep"))?;
        let pages = self.fill_pages(values, max_def);
        let locations = self.write_pages(pages)?;
        let size = i64::try_from(self.chunk.len())
            .map_err(|_| general_error("a profile column chunk is too large"))?;
        let metadata = ColumnChunkMetaData::builder(leaf.clone())
            .set_compression(Compression::UNCOMPRESSED)
            .set_encodings(vec![Encoding::PLAIN, Encoding::RLE])
            .set_num_values(values.len() as i64)
            .set_total_compressed_size(size)
            .set_total_uncompressed_size(size)
            .set_data_page_offset(0)
            .build()?;
        Ok(ColumnCloseResult {
            bytes_written: size as u64,
            rows_written: (values.len() / HOURS) as u64,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(OffsetIndexMetaData {
                page_locations: locations,
                unencoded_byte_array_data_bytes: None,
            }),
        })
    }

    /// Lays the pages' contents out one after the other in `self.pages`; returns where each
    /// page is and how many values it holds.
    fn fill_pages(&mut self, values: &[f32], max_def: u8) -> Vec<(Range<usize>, usize)> {
        self.pages.clear();
        values
            .chunks(PROFILES_PER_PAGE * HOURS)
            .map(|page| {
                let start = self.pages.len();
                push_profile_page(&mut self.pages, page, max_def);
                (start..self.pages.len(), page.len())
            })
            .collect()
    }

    /// Writes the pages laid out in `self.pages`, each behind its header, into `self.chunk`;
    /// returns where each starts (Parquet's offset index, for readers that skip pages).
    fn write_pages(
        &mut self,
        pages: Vec<(Range<usize>, usize)>,
    ) -> parquet::errors::Result<Vec<PageLocation>> {
        let contents = Bytes::from(std::mem::take(&mut self.pages));
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.clear();
        let mut sink = TrackedWrite::new(chunk);
        let mut writer = SerializedPageWriter::new(&mut sink);
        let mut locations = Vec::with_capacity(pages.len());
        for (page, (range, values)) in pages.into_iter().enumerate() {
            let size = range.len();
            let data = Page::DataPage {
                buf: contents.slice(range),
                num_values: u32::try_from(values)
                    .map_err(|_| general_error("a profile page is too large"))?,
                encoding: Encoding::PLAIN,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            };
            let written = writer.write_page(CompressedPage::new(data, size))?;
            locations.push(PageLocation {
                offset: written.offset as i64,
                compressed_page_size: i32::try_from(written.bytes_written)
                    .map_err(|_| general_error("a profile page is too large"))?,
                first_row_index: (page * PROFILES_PER_PAGE) as i64,
            });
        }
        writer.close()?;
        self.chunk = sink.into_inner()?;
        // Every slice of the contents went with its page: the vector comes back for reuse.
        self.pages = contents.try_into_mut().map(Vec::from).unwrap_or_default();
        Ok(locations)
    }
}

/// An encoded column chunk in memory, for the row group writer to copy into the file.
struct EncodedChunk<'a>(&'a [u8]);

impl parquet::file::reader::Length for EncodedChunk<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

impl<'a> parquet::file::reader::ChunkReader for EncodedChunk<'a> {
    type T = &'a [u8];

    fn get_read(&self, start: u64) -> parquet::errors::Result<&'a [u8]> {
        usize::try_from(start)
            .ok()
            .and_then(|start| self.0.get(start..))
            .ok_or_else(|| general_error("read past an encoded column chunk"))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let rest = self.get_read(start)?;
        rest.get(..length)
            .map(Bytes::copy_from_slice)
            .ok_or_else(|| general_error("read past an encoded column chunk"))
    }
}

/// Appends one data page (format v1) of whole profiles: repetition levels, definition levels,
/// values. Each row's repetition levels are a 0 (a new list) and 167 ones (the same list);
/// every value is present, so the definition levels are one run of the maximum.
fn push_profile_page(buf: &mut Vec<u8>, values: &[f32], max_def: u8) {
    let rows = values.len() / HOURS;
    let mut repetition = Vec::with_capacity(rows * 6);
    for _ in 0..rows {
        rle_run(&mut repetition, 0, 1);
        rle_run(&mut repetition, 1, HOURS - 1);
    }
    let mut definition = Vec::with_capacity(16);
    rle_run(&mut definition, max_def, values.len());
    for levels in [repetition, definition] {
        // Level runs of a v1 page are preceded by their length in bytes.
        buf.extend_from_slice(&(levels.len() as u32).to_le_bytes());
        buf.extend_from_slice(&levels);
    }
    if cfg!(target_endian = "little") {
        use arrow::datatypes::ToByteSlice;
        buf.extend_from_slice(values.to_byte_slice());
    } else {
        values
            .iter()
            .for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
    }
}

/// Appends one run of the RLE/bit-packed hybrid encoding: the run length shifted left once (a
/// clear low bit marks a repeated run) as a ULEB128 varint, then the value in one byte (levels
/// here need at most 8 bits).
fn rle_run(out: &mut Vec<u8>, value: u8, count: usize) {
    let mut header = count << 1;
    while header >= 0x80 {
        out.push((header as u8 & 0x7f) | 0x80);
        header >>= 7;
    }
    out.push(header as u8);
    out.push(value);
}

/// The vector a chunk's profiles were built in, back from the written chunk (when nothing else
/// holds it), so the next chunk can fill it instead of fresh memory.
fn profile_buffer(batch: RecordBatch) -> Option<Vec<f32>> {
    let index = batch.schema().index_of(PROFILE).ok()?;
    let values = batch
        .column(index)
        .as_list_opt::<i32>()?
        .values()
        .as_primitive_opt::<Float32Type>()?
        .clone();
    drop(batch);
    let (_, values, _) = values.into_parts();
    values.into_inner().into_vec().ok()
}

fn general_error(message: &str) -> ParquetError {
    ParquetError::General(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_runs_are_uleb128_headers_then_the_value() {
        let mut out = Vec::new();
        rle_run(&mut out, 1, 167);
        // 167 << 1 = 334 = 0b1_0100_1110: low seven bits with the continuation bit, then 2.
        assert_eq!(out, [0xce, 0x02, 0x01]);
        out.clear();
        rle_run(&mut out, 0, 1);
        assert_eq!(out, [0x02, 0x00]);
    }
}
