/**
 * The send journal: how a worker can tell that a reset request provably never left a worker.
 *
 * Before any resetPassword POST, the worker appends `{row, attempt}` to the job's `sends.jsonl` and syncs
 * it to disk; only then does it send. So after an attempt that got no answer (its worker was killed, say),
 * an attempt missing from the journal was never sent: the next request for that user is not an
 * "ambiguous resend", and the attempt does not count as one that reached Graph. An attempt in the
 * journal may or may not have left (the worker could have died between the sync and the send): it keeps
 * the safe answer, "may have been applied".
 *
 * The journal sits in the job's folder on the data volume that every worker of the job shares. Lines are
 * small and appended with O_APPEND, so workers on one host never interleave them.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';

interface JournalLine {
  row: number;
  attempt: number;
}

/** The journal of a job folder. */
export function sendJournalPath(jobDir: string): string {
  return join(jobDir, 'sends.jsonl');
}

/**
 * Creates the job's empty journal when the job is prepared. A job without one was prepared before the
 * journal existed: its sends were never journaled, so nothing can be proven unsent there.
 */
export async function createSendJournal(journal: string): Promise<void> {
  await (await open(journal, 'a', 0o600)).close();
}

/** Records, durably, that this attempt is about to be sent. Call right before the request. */
export async function recordSendIntent(journal: string, row: number, attempt: number): Promise<void> {
  const file = await open(journal, 'a', 0o600);
  try {
    await file.write(`${JSON.stringify({ row, attempt } satisfies JournalLine)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
}

/**
 * Whether this attempt for this row was about to be sent by some worker. False means it provably never
 * left; a journal that is missing (a job prepared before journals) or cannot be read answers true (may
 * have been sent).
 */
export async function sendWasIntended(journal: string, row: number, attempt: number): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(journal, 'utf8');
  } catch {
    return true;
  }
  const wanted = JSON.stringify({ row, attempt } satisfies JournalLine);
  return text.split('\n').some((line) => line === wanted);
}
