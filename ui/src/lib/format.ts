import type { GradeStatus, Platform } from './bindings';

export function score(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
}

export function kindLabel(p: Platform): string {
  return p.kind === 'lti11' ? 'LTI 1.1' : 'LTIAAS';
}

export const statusLabel: Record<GradeStatus, string> = {
  pending: 'Not sent yet',
  in_sync: 'In the gradebook',
  lms_missing: 'Missing in the LMS',
  differs: 'Differs from the LMS',
  failed: 'Failed',
  cannot_send: 'Cannot send',
  unknown: 'Unknown',
};

/** Statuses that need a person's attention. */
export function needsAttention(s: GradeStatus): boolean {
  return s !== 'in_sync';
}
