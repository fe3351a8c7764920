import type { Cause, GradeStatus, Platform } from './bindings';

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

/** Why an attempt failed, in a person's words (the core's stable cause codes). */
export const causeLabel: Partial<Record<Cause, string>> = {
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

export function causeText(c: string): string {
  return causeLabel[c as Cause] ?? c.replaceAll('_', ' ');
}
