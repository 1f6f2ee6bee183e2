/**
 * Ground truth for the report at scale: download it the way `bulk-reset report --out` does, then read
 * the copy back one line at a time and check that every CSV row has exactly one line.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { jobPaths } from '../jobs/jobFiles';
import { copyReport } from '../client/jobs';
import type { ReportCheck } from './types';

export async function checkReport(
  dataDir: string,
  jobId: string,
  users: number,
  outDir: string,
): Promise<ReportCheck> {
  const startedMs = performance.now();
  const copy = await copyReport(dataDir, jobId, join(outDir, `${jobId}-report.csv`), 'csv');
  const downloadSeconds = (performance.now() - startedMs) / 1000;

  const rowsSeen = new Set<number>();
  let lines = 0;
  let unreadable = 0;
  const reader = createInterface({ input: createReadStream(copy), crlfDelay: Infinity });
  let header = true;
  reader.on('line', (line) => {
    if (header) {
      header = false;
      return;
    }
    if (line === '') return;
    lines += 1;
    // The row number is the first cell, a plain integer (never quoted).
    const row = Number(line.slice(0, line.indexOf(',')));
    if (Number.isInteger(row) && row > 0) rowsSeen.add(row);
    else unreadable += 1;
  });
  await once(reader, 'close');

  return {
    lines,
    distinctRows: rowsSeen.size,
    missing: Math.max(users - rowsSeen.size, 0),
    repeated: lines - unreadable - rowsSeen.size,
    unreadable,
    csvMb: (await stat(copy)).size / 2 ** 20,
    jsonMb: (await stat(jobPaths(dataDir, jobId).reportJson)).size / 2 ** 20,
    downloadSeconds,
  };
}
