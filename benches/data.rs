//! Data-layer throughput: the demo generator, and loading 10M order lines (augur's full load with
//! rules and dense ids, against a bare Parquet decode of the same file as the baseline).
//!
//! `cargo bench --bench data`; `AUGUR_BENCH_ORDER_LINES` changes the load size (default 10,000,000).

use std::fs::File;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Float64Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use augur_data::Config;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Writes `lines` order lines: 200k contacts, 5k products, one order per ~2.5 lines.
fn write_orders(path: &Path, lines: usize) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Utf8, false),
        Field::new("contact_id", DataType::Utf8, false),
        Field::new("product_id", DataType::Utf8, false),
        Field::new(
            "ordered_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("quantity", DataType::Int32, false),
        Field::new("unit_price", DataType::Float64, false),
    ]));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(
        File::create(path).expect("create"),
        schema.clone(),
        Some(props),
    )
    .expect("writer");
    let batch = 1 << 20;
    let mut start = 0;
    while start < lines {
        let n = batch.min(lines - start);
        let rows = start..start + n;
        let mix = |i: usize, m: usize| (i.wrapping_mul(2_654_435_761) >> 7) % m;
        let columns: Vec<arrow::array::ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.clone().map(|i| format!("O{}", i * 2 / 5)),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.clone()
                    .map(|i| format!("C{}", mix(i * 2 / 5, 200_000))),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.clone().map(|i| format!("P{}", mix(i, 5_000))),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    rows.clone()
                        .map(|i| (1_700_000_000 + i as i64 * 3) * 1_000_000),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Int32Array::from_iter_values(
                rows.clone().map(|i| 1 + (i % 3) as i32),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows.map(|i| 5.0 + (i % 50) as f64),
            )),
        ];
        writer
            .write(&RecordBatch::try_new(schema.clone(), columns).expect("batch"))
            .expect("write");
        start += n;
    }
    writer.close().expect("close");
}

fn generator(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = augur_synth::DemoSpec {
        contacts: 5_000,
        ..augur_synth::DemoSpec::default()
    };
    let summary = augur_synth::generate(&spec, dir.path(), &|_| {}).expect("generate");
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(summary.events() + summary.contacts));
    group.bench_function("demo_5k_contacts", |b| {
        b.iter(|| augur_synth::generate(black_box(&spec), dir.path(), &|_| {}).expect("generate"));
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let lines: usize = std::env::var("AUGUR_BENCH_ORDER_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("orders.parquet");
    write_orders(&path, lines);
    let config = Config::from_toml("[tables.orders]\npath = \"orders.parquet\"\n", dir.path())
        .expect("config");

    let mut group = c.benchmark_group("load_orders");
    group.sample_size(10);
    group.throughput(Throughput::Elements(lines as u64));
    group.bench_function("parquet_decode_only", |b| {
        b.iter(|| {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open"))
                .expect("reader")
                .with_batch_size(64 * 1024)
                .build()
                .expect("build");
            let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
            black_box(rows)
        });
    });
    group.bench_function("augur_load_validate", |b| {
        b.iter(|| {
            let (history, report) = augur_data::load(black_box(&config)).expect("load");
            black_box((history.orders.len(), report.is_fatal()))
        });
    });
    group.finish();
}

criterion_group!(benches, generator, load);
criterion_main!(benches);
