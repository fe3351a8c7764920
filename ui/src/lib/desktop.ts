// What only the desktop app has, in one place: the native file dialog, OS
// notifications and the File menu (Tauri's dialog and notification plugins and its
// event bus, granted in src-tauri/capabilities/default.json). In a plain browser
// (the bridge) each falls back to what a browser offers, or to nothing.
import { isTauri } from '@tauri-apps/api/core';

export const desktop = isTauri();

/**
 * Ask for one file with the native dialog (desktop only), optionally of some
 * extensions; its path, or null if cancelled.
 */
export async function pickFile(title: string, filter?: { name: string; extensions: string[] }): Promise<string | null> {
  const { open } = await import('@tauri-apps/plugin-dialog');
  const chosen = await open({ title, multiple: false, directory: false, filters: filter ? [filter] : undefined });
  return typeof chosen === 'string' ? chosen : null;
}

/**
 * Run `handler` with the paths of files dropped on the window (desktop only: the
 * shell takes drops and hands over paths, so the core reads the file in place).
 */
export async function onFileDrop(handler: (paths: string[]) => void): Promise<() => void> {
  if (!desktop) return () => {};
  const { getCurrentWebview } = await import('@tauri-apps/api/webview');
  return getCurrentWebview().onDragDropEvent((e) => {
    if (e.payload.type === 'drop') handler(e.payload.paths);
  });
}

/** Whether the person is looking elsewhere (another window, or this one hidden). */
export function inBackground(): boolean {
  return typeof document !== 'undefined' && (document.hidden || !document.hasFocus());
}

/**
 * Tell the person something finished, when the window is in the background: an OS
 * notification (asking permission once), or in a browser the Web Notification API
 * when the page was already allowed. Never throws: a notification is a courtesy.
 */
export async function notifyInBackground(title: string, body: string): Promise<boolean> {
  if (!inBackground()) return false;
  try {
    if (desktop) {
      const n = await import('@tauri-apps/plugin-notification');
      let granted = await n.isPermissionGranted();
      if (!granted) granted = (await n.requestPermission()) === 'granted';
      if (granted) n.sendNotification({ title, body });
      return granted;
    }
    if (typeof Notification !== 'undefined' && Notification.permission === 'granted') {
      new Notification(title, { body });
      return true;
    }
  } catch {
    // No notification service: the summary is in the window.
  }
  return false;
}

/** Run `handler` with the id of each File menu choice (desktop only). */
export async function onMenu(handler: (id: string) => void): Promise<() => void> {
  if (!desktop) return () => {};
  const { listen } = await import('@tauri-apps/api/event');
  return listen<string>('menu', (e) => handler(e.payload));
}
