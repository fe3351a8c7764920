// One way to call the core: Tauri IPC inside the desktop app, the loopback HTTP
// bridge (`passback ui-server`) in a plain browser. Both reject with PassbackError.
import { invoke, isTauri } from '@tauri-apps/api/core';
import type { DoctorReport, GradeRow, Overview, PassbackError } from './types';

function asPassbackError(e: unknown): PassbackError {
  if (e && typeof e === 'object' && 'kind' in e && 'message' in e) {
    const { kind, message } = e as { kind: unknown; message: unknown };
    return { kind: String(kind), message: String(message) };
  }
  if (e instanceof Error) return { kind: 'internal', message: e.message };
  return { kind: 'internal', message: String(e) };
}

export async function call<T>(command: string, args: Record<string, unknown> = {}): Promise<T> {
  try {
    if (isTauri()) return await invoke<T>(command, args);
    let res: Response;
    try {
      res = await fetch(`/api/${command}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
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
    return body as T;
  } catch (e) {
    throw asPassbackError(e);
  }
}

export const api = {
  overview: () => call<Overview>('overview'),
  doctor: () => call<DoctorReport>('doctor'),
  listGrades: () => call<GradeRow[]>('list_grades'),
};
