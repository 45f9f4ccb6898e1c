//! `mxscope export --format parquet`: a scan's records as two Parquet files
//! (Arrow writer, zstd) for DuckDB, pandas or Spark — `domains.parquet`, one
//! row per (domain, vantage), and `targets.parquet`, one row per (target,
//! vantage) — written in row groups as the records stream past, so memory
//! holds one batch of rows whatever the scan's size. Flat columns for what
//! the reports count (the target's report labels included: the same key,
//! verification and protocol rows as `mxscope report`), lists where a fact
//! is a list. Columns: docs/parquet.md.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, ListArray, RecordBatch, StringArray, StructArray, UInt16Array,
    UInt32Array, UInt8Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use mxscope_common::{snake, DomainRecord, Record, TargetRecord};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::distributions::labels::TargetSummary;

/// Rows per record batch handed to the writer (the memory of the export).
const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// What went wrong writing the files.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// The two files being written (under temporary names until [`finish`]).
///
/// [`finish`]: ParquetExport::finish
pub struct ParquetExport {
    dir: PathBuf,
    domains: Table<DomainRow>,
    targets: Table<TargetRow>,
}

impl std::fmt::Debug for ParquetExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetExport")
            .field("dir", &self.dir)
            .finish()
    }
}

impl ParquetExport {
    /// Start `DIR/domains.parquet` and `DIR/targets.parquet` (as `.tmp`
    /// files: the names appear only once both are complete).
    pub fn create(dir: &Path) -> Result<Self, ParquetError> {
        std::fs::create_dir_all(dir).map_err(|source| ParquetError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            domains: Table::create(&dir.join("domains.parquet"), domain_schema())?,
            targets: Table::create(&dir.join("targets.parquet"), target_schema())?,
        })
    }

    pub fn add(&mut self, record: &Record) -> Result<(), ParquetError> {
        match record {
            Record::Domain(d) => self.domains.push(DomainRow::of(d)),
            Record::Target(t) => self.targets.push(TargetRow::of(t)),
        }
    }

    /// Close both files and give them their names; the paths written.
    pub fn finish(self) -> Result<Vec<PathBuf>, ParquetError> {
        Ok(vec![self.domains.finish()?, self.targets.finish()?])
    }
}

/// Rows that know how to become a record batch.
trait Rows: Sized {
    fn batch(rows: &[Self], schema: &SchemaRef) -> Result<RecordBatch, ParquetError>;
}

struct Table<R> {
    path: PathBuf,
    tmp: PathBuf,
    schema: SchemaRef,
    writer: ArrowWriter<File>,
    rows: Vec<R>,
}

impl<R: Rows> Table<R> {
    fn create(path: &Path, schema: SchemaRef) -> Result<Self, ParquetError> {
        let tmp = path.with_extension("parquet.tmp");
        let file = File::create(&tmp).map_err(|source| ParquetError::Io {
            path: tmp.clone(),
            source,
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            schema,
            writer,
            rows: Vec::with_capacity(BATCH_ROWS),
        })
    }

    fn push(&mut self, row: R) -> Result<(), ParquetError> {
        self.rows.push(row);
        if self.rows.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ParquetError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = R::batch(&self.rows, &self.schema)?;
        self.writer.write(&batch)?;
        self.rows.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<PathBuf, ParquetError> {
        self.flush()?;
        self.writer.close()?;
        std::fs::rename(&self.tmp, &self.path).map_err(|source| ParquetError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.path)
    }
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn string_list(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        false,
    )
}

fn mx_fields() -> Fields {
    Fields::from(vec![
        Field::new("preference", DataType::UInt16, false),
        utf8("exchange", false),
        string_list("addresses"),
    ])
}

fn domain_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("scan", true),
        utf8("vantage", true),
        utf8("domain", false),
        utf8("domain_unicode", true),
        utf8("dns_status", false),
        Field::new("null_mx", DataType::Boolean, false),
        Field::new("implicit_mx", DataType::Boolean, false),
        utf8("dns_error", true),
        Field::new(
            "mx",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(mx_fields()),
                true,
            ))),
            false,
        ),
        utf8("security_json", true),
    ]))
}

struct DomainRow {
    scan: Option<String>,
    vantage: Option<String>,
    domain: String,
    domain_unicode: Option<String>,
    dns_status: String,
    null_mx: bool,
    implicit_mx: bool,
    dns_error: Option<String>,
    /// (preference, exchange, addresses).
    mx: Vec<(u16, String, Vec<String>)>,
    security_json: Option<String>,
}

impl DomainRow {
    fn of(d: &DomainRecord) -> Self {
        Self {
            scan: d.scan.clone(),
            vantage: d.vantage.clone(),
            domain: d.domain.clone(),
            domain_unicode: d.domain_unicode.clone(),
            dns_status: snake(&d.dns.status),
            null_mx: d.dns.null_mx,
            implicit_mx: d.dns.implicit_mx,
            dns_error: d.dns.error.clone(),
            mx: d
                .dns
                .mx
                .iter()
                .map(|m| {
                    (
                        m.preference,
                        m.exchange.clone(),
                        m.addresses.iter().map(ToString::to_string).collect(),
                    )
                })
                .collect(),
            security_json: d
                .security
                .as_ref()
                .and_then(|s| serde_json::to_string(s).ok()),
        }
    }
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn lists<'a>(values: impl Iterator<Item = &'a [String]>) -> ArrayRef {
    let mut builder = ListBuilder::new(StringBuilder::new());
    for list in values {
        for item in list {
            builder.values().append_value(item);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

impl Rows for DomainRow {
    fn batch(rows: &[Self], schema: &SchemaRef) -> Result<RecordBatch, ParquetError> {
        let flat: Vec<&(u16, String, Vec<String>)> = rows.iter().flat_map(|r| &r.mx).collect();
        let mx_struct = StructArray::try_new(
            mx_fields(),
            vec![
                Arc::new(flat.iter().map(|m| m.0).collect::<UInt16Array>()) as ArrayRef,
                strings(flat.iter().map(|m| Some(m.1.as_str()))),
                lists(flat.iter().map(|m| m.2.as_slice())),
            ],
            None,
        )?;
        let mx = ListArray::try_new(
            Arc::new(Field::new("item", DataType::Struct(mx_fields()), true)),
            OffsetBuffer::from_lengths(rows.iter().map(|r| r.mx.len())),
            Arc::new(mx_struct),
            None,
        )?;
        let columns: Vec<ArrayRef> = vec![
            strings(rows.iter().map(|r| r.scan.as_deref())),
            strings(rows.iter().map(|r| r.vantage.as_deref())),
            strings(rows.iter().map(|r| Some(r.domain.as_str()))),
            strings(rows.iter().map(|r| r.domain_unicode.as_deref())),
            strings(rows.iter().map(|r| Some(r.dns_status.as_str()))),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.null_mx))
                    .collect::<BooleanArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.implicit_mx))
                    .collect::<BooleanArray>(),
            ),
            strings(rows.iter().map(|r| r.dns_error.as_deref())),
            Arc::new(mx),
            strings(rows.iter().map(|r| r.security_json.as_deref())),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// A text that sorts as addresses do (IPv4 first, then by value): `4` and
/// 8 hex digits, or `6` and 32; the report's tie-break between a host's
/// equally good addresses is the smallest.
fn ip_sort(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => format!("4{:08x}", u32::from(v4)),
        std::net::IpAddr::V6(v6) => format!("6{:032x}", u128::from(v6)),
    }
}

fn target_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("scan", true),
        utf8("vantage", true),
        utf8("ip", false),
        utf8("ip_sort", false),
        Field::new("port", DataType::UInt16, false),
        string_list("mx_names"),
        utf8("outcome", false),
        Field::new("outcome_rank", DataType::UInt8, false),
        utf8("bucket", false),
        utf8("phase", false),
        utf8("detail", true),
        utf8("tls_version", true),
        utf8("cipher", true),
        utf8("tls_source", true),
        utf8("key_label", false),
        utf8("key_type", true),
        Field::new("key_bits", DataType::UInt32, true),
        utf8("verification", false),
        string_list("names_matched"),
        utf8("highest_protocol", false),
        utf8("ssl3", false),
        utf8("tls1_0", false),
        utf8("tls1_1", false),
        utf8("tls1_2", false),
        utf8("tls1_3", false),
        utf8("key_exchange", false),
        utf8("not_after", true),
        utf8("sha256", true),
        Field::new("sessions", DataType::UInt32, false),
        string_list("findings"),
        string_list("anomalies"),
    ]))
}

struct TargetRow {
    record: TargetRecord,
    summary: TargetSummary,
    findings: Vec<String>,
    anomalies: Vec<String>,
}

impl TargetRow {
    fn of(t: &TargetRecord) -> Self {
        Self {
            summary: TargetSummary::of(t),
            findings: t.findings.iter().map(|f| f.id.name()).collect(),
            anomalies: t.anomalies.iter().map(snake).collect(),
            record: t.clone(),
        }
    }
}

impl Rows for TargetRow {
    fn batch(rows: &[Self], schema: &SchemaRef) -> Result<RecordBatch, ParquetError> {
        let owned = |f: &dyn Fn(&Self) -> Option<String>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<StringArray>())
        };
        let leaf = |r: &Self| r.record.tls.as_ref().and_then(|t| t.chain.first().cloned());
        let support = |i: usize| owned(&|r: &Self| Some(snake(&r.summary.protocols[i])));
        let columns: Vec<ArrayRef> = vec![
            owned(&|r| r.record.scan.clone()),
            owned(&|r| r.record.vantage.clone()),
            owned(&|r| Some(r.record.ip.to_string())),
            owned(&|r| Some(ip_sort(r.record.ip))),
            Arc::new(rows.iter().map(|r| r.record.port).collect::<UInt16Array>()),
            lists(rows.iter().map(|r| r.record.mx_names.as_slice())),
            owned(&|r| Some(r.record.outcome.as_str().to_string())),
            Arc::new(
                rows.iter()
                    .map(|r| r.record.outcome.rank())
                    .collect::<UInt8Array>(),
            ),
            owned(&|r| Some(snake(&r.record.outcome.bucket()))),
            owned(&|r| Some(snake(&r.record.phase))),
            owned(&|r| r.record.detail.clone()),
            owned(&|r| r.record.tls.as_ref().map(|t| t.version.clone())),
            owned(&|r| r.record.tls.as_ref().map(|t| t.cipher.clone())),
            owned(&|r| r.record.tls.as_ref().map(|t| snake(&t.source))),
            owned(&|r| Some(r.summary.key.clone())),
            owned(&|r| leaf(r).map(|c| c.key.key_type)),
            Arc::new(
                rows.iter()
                    .map(|r| leaf(r).and_then(|c| c.key.bits))
                    .collect::<UInt32Array>(),
            ),
            owned(&|r| Some(r.summary.verification.to_string())),
            lists(rows.iter().map(|r| r.summary.names_matched.as_slice())),
            owned(&|r| Some(r.summary.highest_protocol.clone())),
            support(0),
            support(1),
            support(2),
            support(3),
            support(4),
            owned(&|r| Some(r.summary.key_exchange.to_string())),
            owned(&|r| leaf(r).map(|c| c.not_after)),
            owned(&|r| leaf(r).map(|c| c.sha256)),
            Arc::new(
                rows.iter()
                    .map(|r| r.record.sessions)
                    .collect::<UInt32Array>(),
            ),
            lists(rows.iter().map(|r| r.findings.as_slice())),
            lists(rows.iter().map(|r| r.anomalies.as_slice())),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}
