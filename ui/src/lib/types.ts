// Mirrors of the core's serialized types (src/model.rs). Keep in step with the Rust side.

export type PlatformKind = 'lti11' | 'ltiaas';

export interface Platform {
  id: number;
  name: string;
  kind: PlatformKind;
  consumer_key: string | null;
  base_url: string | null;
  allowed_hosts: string[];
  allow_http: boolean;
  secret_ref: string;
  created_at: string;
}

export interface ActivityRow {
  id: number;
  platform: string;
  context_id: string;
  context_title: string | null;
  resource_link_id: string;
  title: string | null;
  points_possible: number | null;
  learners: number;
  grades: number;
}

export type GradeStatus =
  | 'pending'
  | 'in_sync'
  | 'lms_missing'
  | 'differs'
  | 'failed'
  | 'cannot_send'
  | 'unknown';

export interface GradeRow {
  grade_id: number;
  platform: string;
  context_id: string;
  resource_link_id: string;
  activity_title: string | null;
  lti_user_id: string;
  learner_name: string | null;
  version: number;
  score_given: number;
  score_maximum: number;
  recorded_at: string;
  status: GradeStatus;
  status_detail: string | null;
}

export interface Overview {
  db_path: string;
  workspace: 'ledger' | 'demo' | string;
  sandbox_url: string | null;
  platforms: Platform[];
  activities: ActivityRow[];
  grade_count: number;
}

export interface DoctorReport {
  passback_version: string;
  sqlite_version: string;
  db_path: string;
  schema_version: number;
  schema_latest: number;
  ledger_id: string;
  keyring_ok: boolean;
  keyring_detail: string;
}

/** The core's one error type: a stable kind and a human message. */
export interface PassbackError {
  kind: string;
  message: string;
}
