//! What users and operators touch: the commands (`mxscope scan`,
//! `report`, `export`, the worker's `probe`), the record schema, Parquet
//! read by DuckDB, Prometheus, `deploy/`, the Debian package, and the
//! layout of the code.

mod cli;
mod deploy;
mod layout;
mod observability;
mod package;
mod parquet;
mod report;
mod scan;
mod schema;
