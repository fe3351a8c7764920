import type { Cause, GradeStatus, Platform } from './bindings';
import { lang, num, t } from './i18n.svelte';

/** A score as the language writes it, without trailing zeros (at most 2 decimals). */
export function score(v: number): string {
  return num(v, 2);
}

export function kindLabel(p: Platform): string {
  return p.kind === 'lti11' ? 'LTI 1.1' : 'LTIAAS';
}

const statusEnglish: Record<GradeStatus, string> = {
  pending: 'Not sent yet',
  in_sync: 'In the gradebook',
  lms_missing: 'Missing in the LMS',
  differs: 'Differs from the LMS',
  failed: 'Failed',
  cannot_send: 'Cannot send',
  unknown: 'Unknown',
};

/** Every status, in the order the window lists them. */
export const statuses = Object.keys(statusEnglish) as GradeStatus[];

/** A grade's status in a person's words. */
export function statusLabel(s: GradeStatus): string {
  return t(statusEnglish[s]);
}

// Marks the English texts above as catalogue keys for scripts/check-i18n.mjs:
// t('Not sent yet') t('In the gradebook') t('Missing in the LMS') t('Differs from the LMS')
// t('Failed') t('Cannot send') t('Unknown')

/** Statuses that need a person's attention. */
export function needsAttention(s: GradeStatus): boolean {
  return s !== 'in_sync';
}

/** Why an attempt failed, in a person's words (the core's stable cause codes). */
const causeEnglish: Partial<Record<Cause, string>> = {
  server_error: 'LMS server error',
  rate_limited: 'Rate limited by the LMS',
  timeout: 'No answer in time',
  connection_failed: 'Could not connect',
  malformed_answer: 'Unreadable answer',
  mismatched_answer: 'Answer to another request',
  lms_busy: 'LMS busy',
  interrupted: 'Interrupted',
  signature_rejected: 'Signature rejected',
  clock_skew: "This computer's clock is off",
  consumer_key_unknown: 'Consumer key unknown to the LMS',
  nonce_replayed: 'Request replayed',
  outcomes_disabled: 'Grade passback turned off',
  api_key_rejected: 'API key rejected',
  service_key_stale: 'Service key expired',
  unknown_sourcedid: 'Grade slot unknown to the LMS',
  not_a_student: 'No longer a student',
  course_closed: 'Course closed',
  assignment_invalid: 'Assignment unknown',
  no_points_possible: 'Assignment has no points',
  not_accepting_grades: 'Assignment not accepting grades',
  bad_score: 'Score refused',
  lms_refused: 'Refused by the LMS',
};
// t('LMS server error') t('Rate limited by the LMS') t('No answer in time') t('Could not connect')
// t('Unreadable answer') t('Answer to another request') t('LMS busy') t('Interrupted')
// t('Signature rejected') t("This computer's clock is off") t('Consumer key unknown to the LMS')
// t('Request replayed') t('Grade passback turned off') t('API key rejected') t('Service key expired')
// t('Grade slot unknown to the LMS') t('No longer a student') t('Course closed') t('Assignment unknown')
// t('Assignment has no points') t('Assignment not accepting grades') t('Score refused') t('Refused by the LMS')

export function causeText(c: string): string {
  const en = causeEnglish[c as Cause];
  return en ? t(en) : c.replaceAll('_', ' ');
}

/**
 * The fix for a cause, in the window's language. The core writes its hints in
 * English (the CLI's language); the catalogue carries each cause's hint for the
 * other languages, keyed `hint:<cause>`.
 */
export function hintText(cause: string | null | undefined, coreHint: string | null | undefined): string | null {
  if (lang() !== 'en' && cause) {
    const key = `hint:${cause}`;
    const translated = t(key);
    if (translated !== key) return translated;
  }
  return coreHint ?? null;
}
