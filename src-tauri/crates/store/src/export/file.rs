//! Writing the file: CSV with the `csv` crate, XLSX with `rust_xlsxwriter` in constant-memory
//! mode (each row goes to a temporary file as it is written, so a big sheet doesn't sit in
//! memory), both into a temporary file in the destination folder that is renamed over the final
//! name only when everything was written and synced. A failed or cancelled export drops the
//! temporary file, so no half-written file is ever left under the name the user chose.

use super::ExportError;
use clientele_core::export::{Cell, CompiledProfile, Output, Protection, is_formula_like};
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Excel's limits.
const XLSX_MAX_ROWS: u32 = 1_048_576;
const XLSX_MAX_TEXT: usize = 32_767;
/// A readable default column width (characters).
const XLSX_COLUMN_WIDTH: f64 = 18.0;

/// The folder `out` will be written in, checked.
pub(crate) fn destination_folder(out: &Path) -> Result<PathBuf, ExportError> {
    if out.is_dir() {
        return Err(ExportError::IsAFolder(out.to_path_buf()));
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(ExportError::FolderMissing(dir));
    }
    if out.file_name().is_none() {
        return Err(ExportError::IsAFolder(out.to_path_buf()));
    }
    Ok(dir)
}

/// A temporary file beside the destination.
pub(crate) fn temporary_in(dir: &Path) -> Result<tempfile::NamedTempFile, ExportError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".clientele-export-").suffix(".part");
    // An ordinary file once renamed (tempfile's default is owner-only); the umask still applies.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder
        .tempfile_in(dir)
        .map_err(|e| ExportError::FolderNotWritable {
            path: dir.to_path_buf(),
            reason: io_reason(&e),
        })
}

/// Renames the finished temporary file over `out`.
pub(crate) fn publish(tmp: tempfile::NamedTempFile, out: &Path) -> Result<(), ExportError> {
    tmp.as_file().sync_all().map_err(|e| write_error(out, &e))?;
    tmp.persist(out).map_err(|e| write_error(out, &e.error))?;
    Ok(())
}

pub(crate) fn write_error(path: &Path, e: &std::io::Error) -> ExportError {
    ExportError::Write {
        path: path.to_path_buf(),
        reason: io_reason(e),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::StorageFull => "the disk is full".into(),
        ErrorKind::ReadOnlyFilesystem => "the disk is read-only".into(),
        _ => e.to_string(),
    }
}

/// Where rows go.
pub(crate) enum Sink {
    Csv(Box<CsvSink>),
    Xlsx(Box<XlsxSink>),
}

pub(crate) struct CsvSink {
    writer: csv::Writer<BufWriter<File>>,
    /// For the header row.
    neutralize: bool,
    /// For each column.
    protections: Vec<Protection>,
    record: csv::ByteRecord,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::Csv(_) => "Sink::Csv",
            Sink::Xlsx(_) => "Sink::Xlsx",
        })
    }
}

pub(crate) struct XlsxSink {
    workbook: Workbook,
    file: File,
    row: u32,
    neutralize: bool,
    header: Format,
    quoted: Format,
    dates: HashMap<String, Format>,
}

impl Sink {
    /// Opens the sink on `file` (the temporary file); `dir` is where XLSX keeps its row data
    /// while writing.
    pub(crate) fn open(
        c: &CompiledProfile,
        file: File,
        dir: &Path,
        out: &Path,
    ) -> Result<Sink, ExportError> {
        match c.output {
            Output::Csv(settings) => {
                let mut buf = BufWriter::with_capacity(64 * 1024, file);
                if settings.bom {
                    buf.write_all("\u{feff}".as_bytes())
                        .map_err(|e| write_error(out, &e))?;
                }
                let writer = csv::WriterBuilder::new()
                    .delimiter(settings.delimiter)
                    .terminator(if settings.crlf {
                        csv::Terminator::CRLF
                    } else {
                        csv::Terminator::Any(b'\n')
                    })
                    .quote_style(csv::QuoteStyle::Necessary)
                    .from_writer(buf);
                Ok(Sink::Csv(Box::new(CsvSink {
                    writer,
                    neutralize: settings.neutralize,
                    protections: c.protections().to_vec(),
                    record: csv::ByteRecord::new(),
                })))
            }
            Output::Xlsx { neutralize, .. } => {
                let mut workbook = Workbook::new();
                workbook.set_tempdir(dir).map_err(|e| xlsx_error(out, e))?;
                let sheet = workbook
                    .add_worksheet_with_constant_memory()
                    .map_err(|e| xlsx_error(out, e))?;
                sheet
                    .set_name(sheet_name(&c.profile.name))
                    .map_err(|e| xlsx_error(out, e))?;
                for col in 0..c.column_count().min(16_384) {
                    sheet
                        .set_column_width(col as u16, XLSX_COLUMN_WIDTH)
                        .map_err(|e| xlsx_error(out, e))?;
                }
                Ok(Sink::Xlsx(Box::new(XlsxSink {
                    workbook,
                    file,
                    row: 0,
                    neutralize,
                    header: Format::new().set_bold(),
                    // Excel's own "this is text" marker: shown without the quote, never a formula.
                    quoted: Format::new().set_quote_prefix(),
                    dates: HashMap::new(),
                })))
            }
        }
    }

    pub(crate) fn header<'a>(
        &mut self,
        headers: impl Iterator<Item = &'a str>,
        out: &Path,
    ) -> Result<(), ExportError> {
        match self {
            Sink::Csv(c) => {
                let CsvSink {
                    writer,
                    neutralize,
                    record,
                    ..
                } = &mut **c;
                record.clear();
                for h in headers {
                    let text = if *neutralize {
                        clientele_core::export::neutralize(h)
                    } else {
                        h.into()
                    };
                    record.push_field(text.as_bytes());
                }
                writer
                    .write_byte_record(record)
                    .map_err(|e| csv_error(out, e))
            }
            Sink::Xlsx(x) => {
                let x = &mut **x;
                let sheet = x
                    .workbook
                    .worksheet_from_index(0)
                    .map_err(|e| xlsx_error(out, e))?;
                for (col, h) in headers.enumerate() {
                    sheet
                        .write_string_with_format(x.row, col as u16, h, &x.header)
                        .map_err(|e| xlsx_error(out, e))?;
                }
                x.row += 1;
                Ok(())
            }
        }
    }

    pub(crate) fn row(&mut self, cells: &[Cell], out: &Path) -> Result<(), ExportError> {
        match self {
            Sink::Csv(c) => {
                let CsvSink {
                    writer,
                    protections,
                    record,
                    ..
                } = &mut **c;
                record.clear();
                for (cell, protection) in cells.iter().zip(protections.iter()) {
                    record.push_field(cell.csv_text_guarded(*protection).as_bytes());
                }
                writer
                    .write_byte_record(record)
                    .map_err(|e| csv_error(out, e))
            }
            Sink::Xlsx(x) => x.row(cells, out),
        }
    }

    /// Flushes everything into the temporary file.
    pub(crate) fn finish(self, out: &Path) -> Result<(), ExportError> {
        match self {
            Sink::Csv(c) => {
                let buf = c.writer.into_inner().map_err(|e| ExportError::Write {
                    path: out.to_path_buf(),
                    reason: e.error().to_string(),
                })?;
                buf.into_inner().map_err(|e| write_error(out, e.error()))?;
                Ok(())
            }
            Sink::Xlsx(mut x) => {
                let file = BufWriter::new(&x.file);
                x.workbook
                    .save_to_writer(file)
                    .map_err(|e| xlsx_error(out, e))
            }
        }
    }
}

impl XlsxSink {
    fn row(&mut self, cells: &[Cell], out: &Path) -> Result<(), ExportError> {
        if self.row >= XLSX_MAX_ROWS {
            return Err(ExportError::TooManyRows);
        }
        let row = self.row;
        for (col, cell) in cells.iter().enumerate() {
            let col = col as u16;
            let date_format = match cell {
                Cell::DateTime {
                    excel_format: Some(f),
                    ..
                } => Some(
                    self.dates
                        .entry(f.clone())
                        .or_insert_with(|| Format::new().set_num_format(f))
                        .clone(),
                ),
                _ => None,
            };
            let sheet = self
                .workbook
                .worksheet_from_index(0)
                .map_err(|e| xlsx_error(out, e))?;
            let written = match cell {
                Cell::Empty => Ok(&mut *sheet),
                Cell::Number { value, .. } => sheet.write_number(row, col, *value),
                Cell::Bool(b) => sheet.write_boolean(row, col, *b),
                Cell::DateTime { local, text, .. } => match &date_format {
                    Some(f) => sheet.write_datetime_with_format(row, col, local, f),
                    None => write_text(sheet, row, col, text, self.neutralize, &self.quoted),
                },
                Cell::Text(t) => write_text(sheet, row, col, t, self.neutralize, &self.quoted),
            };
            written.map_err(|e| xlsx_error(out, e))?;
        }
        self.row += 1;
        Ok(())
    }
}

fn write_text<'s>(
    sheet: &'s mut rust_xlsxwriter::Worksheet,
    row: u32,
    col: u16,
    text: &str,
    neutralize: bool,
    quoted: &Format,
) -> Result<&'s mut rust_xlsxwriter::Worksheet, XlsxError> {
    let text = truncate(text, XLSX_MAX_TEXT);
    if text.is_empty() {
        return Ok(sheet);
    }
    if neutralize && is_formula_like(text) {
        sheet.write_string_with_format(row, col, text, quoted)
    } else {
        sheet.write_string(row, col, text)
    }
}

/// At most `max` UTF-16 units (Excel's measure), cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &text[..i];
        }
    }
    text
}

/// A worksheet name Excel accepts: at most 31 characters, none of `[]:*?/\`, not starting or
/// ending with `'`.
fn sheet_name(profile: &str) -> String {
    let cleaned: String = profile
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .take(31)
        .collect();
    let cleaned = cleaned.trim_matches('\'').trim().to_string();
    if cleaned.is_empty() || cleaned.eq_ignore_ascii_case("history") {
        "Export".into()
    } else {
        cleaned
    }
}

fn csv_error(out: &Path, e: csv::Error) -> ExportError {
    ExportError::Write {
        path: out.to_path_buf(),
        reason: match e.into_kind() {
            csv::ErrorKind::Io(io) => io_reason(&io),
            other => format!("{other:?}"),
        },
    }
}

fn xlsx_error(out: &Path, e: XlsxError) -> ExportError {
    match e {
        XlsxError::IoError(io) => write_error(out, &io),
        XlsxError::RowColumnLimitError => ExportError::TooManyRows,
        other => ExportError::Write {
            path: out.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_and_truncation() {
        assert_eq!(sheet_name("Mailing: VIP [May]"), "Mailing_ VIP _May_");
        assert_eq!(sheet_name("'"), "Export");
        assert_eq!(sheet_name(&"x".repeat(40)).len(), 31);
        assert_eq!(truncate("héllo", 3), "hél");
        assert_eq!(truncate("😀😀", 3), "😀", "an emoji is two UTF-16 units");
    }
}
