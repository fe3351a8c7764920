//! Importing files through the facade: what the CLI's `passback import` and the
//! window's Import screen call.

use std::path::Path;

use super::Passback;
use crate::error::Result;
use crate::import::{ImportEvent, ImportOptions, ImportReport, import_file};
use crate::intake::UndoReport;
use crate::model::{ImportBatch, RowIssue};
use crate::progress::Progress;

impl Passback {
    /// Import one file (one batch, one transaction), reporting through `sink`.
    pub async fn import_file(
        &self,
        path: &Path,
        opts: &ImportOptions,
        sink: &mut (dyn Progress<ImportEvent> + Send),
    ) -> Result<ImportReport> {
        import_file(self.intake(), self.secrets(), path, opts, sink).await
    }

    /// Every import batch, newest first.
    pub async fn list_imports(&self) -> Result<Vec<ImportBatch>> {
        self.store().list_batches().await
    }

    /// One batch and every row it rejected or skipped.
    pub async fn import_batch(&self, id: i64) -> Result<(ImportBatch, Vec<RowIssue>)> {
        Ok((
            self.store().batch(id).await?,
            self.store().batch_issues(id).await?,
        ))
    }

    /// Take an import batch back (see [`crate::intake::Intake::undo_batch`]).
    pub async fn undo_import(&self, id: i64) -> Result<UndoReport> {
        self.intake().undo_batch(id).await
    }
}
