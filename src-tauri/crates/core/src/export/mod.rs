//! Exports, the pure half: profiles (what to export and how), sources (where a column's value
//! comes from), transforms and typed cells (what is written), formula neutralization, and the
//! mapping from a person or an event to one row of cells.
//!
//! The store streams rows and writes files (`clientele_store::export`); everything that decides
//! *what* a cell contains lives here, so the CSV file, the XLSX file and the preview can't
//! disagree.

pub mod cell;
pub mod profile;
pub mod row;
pub mod source;
pub mod transform;

pub use cell::{Cell, CellKind, Protection, is_formula_like, is_plain_phone_number, neutralize};
pub use profile::{
    Case, CellType, Column, CsvFormat, CsvSettings, DateFormat, Delimiter, ExportProfile, Filters,
    Format, LineEnding, PhoneFormat, Preset, ProfileError, RowKind, TimeRange, Transform,
    XlsxFormat, YesNoWords,
};
pub use row::{
    CompiledProfile, EventRow, Needs, Output, PersonRow, RecordRow, RowRef, fingerprint,
};
pub use source::{ColumnKind, Source};
