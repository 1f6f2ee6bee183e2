/**
 * What a process has cost so far, read from Linux's /proc: CPU seconds (user + system) and peak
 * resident memory. Read from outside, so the worker and the dev server are measured as they run.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let ticksPerSecond: number | undefined;

/** `getconf CLK_TCK`: the unit of utime and stime in /proc/<pid>/stat. */
function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return ticksPerSecond;
}

/** The fields of /proc/<pid>/stat from field 3 on: the command name before them may hold spaces. */
function statFields(pid: number): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime (fields 14 and 15) in seconds. */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/**
 * CPU seconds of a process and all its descendants: those alive now, and those already ended and
 * waited for (cutime + cstime, fields 16 and 17). For PostgreSQL, whose connections are child processes.
 */
export function treeCpuSeconds(root: number): number {
  const { pids, descends } = processTree(root);
  let total = 0;
  for (const pid of [root, ...pids.filter(descends)]) {
    try {
      const fields = statFields(pid);
      total += Number(fields[11]) + Number(fields[12]);
      if (pid === root) total += Number(fields[13]) + Number(fields[14]);
    } catch {
      // ended meanwhile
    }
  }
  return total / clockTicks();
}

/** VmHWM: the most resident memory the process has had, in MB. */
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

function parentOf(pid: number): number | undefined {
  try {
    return Number(statFields(pid)[1]);
  } catch {
    return undefined; // gone meanwhile
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Every process now, and whether one descends from `ancestor` (not counting `ancestor` itself). */
function processTree(ancestor: number): { pids: number[]; descends: (pid: number) => boolean } {
  const pids = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
  const parents = new Map(pids.map((pid) => [pid, parentOf(pid)]));
  const descends = (pid: number): boolean => {
    for (
      let current = parents.get(pid);
      current !== undefined && current > 1;
      current = parents.get(current)
    ) {
      if (current === ancestor) return true;
    }
    return false;
  };
  return { pids, descends };
}

/**
 * A descendant of `ancestor` whose command line contains every one of `words`, other than those in
 * `except` (a server already measured, still running beside a fresh one).
 */
export function findDescendant(
  ancestor: number,
  words: readonly string[],
  except: ReadonlySet<number> = new Set(),
): number | undefined {
  const { pids, descends } = processTree(ancestor);
  return pids.find(
    (pid) => !except.has(pid) && descends(pid) && words.every((word) => commandLine(pid).includes(word)),
  );
}
