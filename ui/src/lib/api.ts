// One way to call the core: Tauri IPC inside the desktop app (one `call` command that
// routes to the core's command table), the loopback HTTP bridge (`passback ui-server`)
// in a plain browser. Both reject with a CallError. Command names, arguments and
// results are typed from the Rust command table (bindings.ts, generated).
import { Channel, invoke, isTauri } from '@tauri-apps/api/core';
import type { CommandName, Commands, JobEvent, PassbackError } from './bindings';

/** The core's error, or `unavailable` when Passback itself did not answer. */
export type CallError = { kind: PassbackError['kind'] | 'unavailable'; message: string };

function asCallError(e: unknown): CallError {
  if (e && typeof e === 'object' && 'kind' in e && 'message' in e) {
    const { kind, message } = e as { kind: unknown; message: unknown };
    return { kind: String(kind) as CallError['kind'], message: String(message) };
  }
  if (e instanceof Error) return { kind: 'internal', message: e.message };
  return { kind: 'internal', message: String(e) };
}

/**
 * The browser bridge's per-run token. `passback ui-server` prints the address to open
 * with the token in its fragment (`#token=…`, never sent to a server); it is read once
 * here, kept in memory only, and removed from the address bar. Every bridge call sends
 * it as `X-Passback-Token`. Inside the desktop app there is none.
 */
const bridgeToken: string | null = isTauri() ? null : takeBridgeToken();

function takeBridgeToken(): string | null {
  if (typeof location === 'undefined') return null;
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
  const token = fragment.get('token');
  if (token === null) return null;
  fragment.delete('token');
  const rest = fragment.toString();
  history.replaceState(history.state, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
  return token;
}

export async function call<C extends CommandName>(
  command: C,
  args: Commands[C]['args'],
): Promise<Commands[C]['result']> {
  try {
    if (isTauri()) return await invoke<Commands[C]['result']>('call', { command, args });
    let res: Response;
    try {
      res = await fetch(`/api/${command}`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          ...(bridgeToken === null ? {} : { 'X-Passback-Token': bridgeToken }),
        },
        body: JSON.stringify(args),
      });
    } catch (e) {
      throw {
        kind: 'unavailable',
        message: `Passback did not answer (${e instanceof Error ? e.message : String(e)}). Is it still running?`,
      };
    }
    const body: unknown = await res.json().catch(() => null);
    if (!res.ok) {
      throw body ?? { kind: 'internal', message: `HTTP ${res.status} from the Passback bridge` };
    }
    return body as Commands[C]['result'];
  } catch (e) {
    throw asCallError(e);
  }
}

/**
 * Follow a job the window started: `onEvent` gets each event from number `after` on,
 * as it happens; the promise settles when the job has ended (or the stream broke).
 * In the desktop app the events come over a Tauri IPC channel; through the browser
 * bridge, as NDJSON lines of one streamed response.
 */
export async function watchJob(jobId: number, after: number, onEvent: (e: JobEvent) => void): Promise<void> {
  try {
    if (isTauri()) {
      const channel = new Channel<JobEvent>();
      channel.onmessage = onEvent;
      await invoke('watch_job', { jobId, after, onEvent: channel });
      return;
    }
    const res = await fetch('/api/stream/watch_job', {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        ...(bridgeToken === null ? {} : { 'X-Passback-Token': bridgeToken }),
      },
      body: JSON.stringify({ job_id: jobId, after }),
    });
    if (!res.ok || !res.body) {
      const body: unknown = await res.json().catch(() => null);
      throw body ?? { kind: 'internal', message: `HTTP ${res.status} from the Passback bridge` };
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) onEvent(JSON.parse(line) as JobEvent);
      }
    }
  } catch (e) {
    throw asCallError(e);
  }
}

export const api = {
  overview: () => call('overview', {}),
  doctor: () => call('doctor', {}),
  listGrades: () => call('list_grades', {}),
  gradesPage: (q: Commands['grades_page']['args']) => call('grades_page', q),
  gradesCount: (q: Commands['grades_count']['args']) => call('grades_count', q),
  health: () => call('health', {}),
  addPlatform: (f: Commands['add_platform']['args']) => call('add_platform', f),
  editPlatform: (f: Commands['edit_platform']['args']) => call('edit_platform', f),
  removePlatform: (name: string, force: boolean) => call('remove_platform', { name, force }),
  testConnection: (t: Commands['test_connection']['args']) => call('test_connection', t),
  gradeTimeline: (gradeId: number) => call('grade_timeline', { grade_id: gradeId, limit: null }),
  planSync: (r: Commands['plan_sync']['args']) => call('plan_sync', r),
  startSync: (r: Commands['start_sync']['args']) => call('start_sync', r),
  startImport: (u: Commands['start_import']['args']) => call('start_import', u),
  startImportPath: (r: Commands['start_import_path']['args']) => call('start_import_path', r),
  startReconcile: (r: Commands['start_reconcile']['args']) => call('start_reconcile', r),
  cancelJob: (jobId: number) => call('cancel_job', { job_id: jobId, after: 0 }),
  jobEvents: (jobId: number, after: number) => call('job_events', { job_id: jobId, after }),
  openLedger: (path: string) => call('open_ledger', { path }),
  trustLedger: (path: string | null = null) => call('trust_ledger', { path }),
};
