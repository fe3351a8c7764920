// What the window knows about the open ledger that every screen needs: whether it is
// read-only (opened from elsewhere, not trusted yet), so no screen offers an action
// the core would refuse.
import { t } from './i18n.svelte';

export const ledger = $state({ readOnly: false });

/** Why a write action is unavailable on a read-only ledger (a tooltip), or undefined. */
export function readOnlyTitle(): string | undefined {
  return ledger.readOnly ? t('This ledger is read-only until you trust it.') : undefined;
}
