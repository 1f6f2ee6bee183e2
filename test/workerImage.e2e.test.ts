/**
 * The worker image, as far as it can be checked without Docker: its Dockerfile (multi-stage, non-root,
 * the workflow code bundled at build time, exec-form start behind tini, SIGTERM to stop), and the
 * prebuilt bundle itself: built by the same command the Dockerfile runs, then loaded by a worker
 * process that runs a small job on the dev server without bundling anything at start.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { checkCsv, startJob, waitForJob } from '../client/jobs';
import { PROJECT_ROOT } from '../temporal/devServer';
import { sampleCsv } from '../simulator/sampleUsers';
import { WORKFLOW_BUNDLE_ENV } from '../worker/bundle';
import { NODE_FLAGS } from '../worker/nodeFlags';
import { FAST_POLICY, openStage, readJson, type ReportJson, type Stage } from './support/harness';

const runFile = promisify(execFile);

interface Instruction {
  keyword: string;
  args: string;
}

interface BuildStage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** The Dockerfile's stages and instructions (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): BuildStage[] {
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: BuildStage[] = [];
  for (const line of logical) {
    const [keyword, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') {
      const [from, as, name] = args.split(/\s+/);
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      if (stages.length === 0) throw new Error(`Dockerfile: ${keyword} before the first FROM`);
      stages[stages.length - 1].instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

/** A JSON array of strings (exec form), or undefined for the shell form. */
function execForm(args: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((item) => typeof item === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The `ENV` assignments of a stage (`KEY=value` pairs, several per instruction). */
function envOf(buildStage: BuildStage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { keyword, args } of buildStage.instructions) {
    if (keyword !== 'ENV') continue;
    for (const pair of args.split(/\s+/)) {
      const at = pair.indexOf('=');
      if (at > 0) env[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  return env;
}

describe('the worker Dockerfile', () => {
  let stages: BuildStage[];
  let build: BuildStage;
  let runtime: BuildStage;

  beforeAll(async () => {
    stages = parseDockerfile(await readFile(join(PROJECT_ROOT, 'temporal-docker', 'Dockerfile'), 'utf8'));
    build = stages[0];
    runtime = stages[stages.length - 1];
  });

  test('builds in one stage and runs from another that copies only the build output', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build.name).toBeDefined();
    const copies = runtime.instructions.filter(({ keyword }) => keyword === 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) expect(copy.args).toContain(`--from=${build.name}`);
    // The compilers and webpack's bundling run in the build stage only.
    expect(runtime.instructions.some(({ args }) => /npm (run build|install|ci)\b/.test(args))).toBe(false);
  });

  test('bundles the workflow code at build time and points the worker at that bundle', () => {
    const bundleRun = build.instructions.find(
      ({ keyword, args }) => keyword === 'RUN' && args.includes('dist/worker/bundle.js'),
    );
    expect(bundleRun).toBeDefined();
    const [, output] = (bundleRun as Instruction).args.split(/\s+/).slice(1);
    const workdir = build.instructions.filter(({ keyword }) => keyword === 'WORKDIR').pop()?.args ?? '/';
    expect(envOf(runtime)[WORKFLOW_BUNDLE_ENV]).toBe(posix.resolve(workdir, output));
    // The bundle lands in dist/, which the runtime stage copies from the build stage.
    expect(output.startsWith('dist/')).toBe(true);
    expect(
      runtime.instructions.some(({ keyword, args }) => keyword === 'COPY' && /\/app\/dist\s/.test(args)),
    ).toBe(true);
  });

  test('runs as a non-root user', () => {
    const users = runtime.instructions.filter(({ keyword }) => keyword === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = (users[users.length - 1].args.split(':')[0] ?? '').trim();
    expect(['', 'root', '0']).not.toContain(user);
    // Nothing runs as root after the switch.
    const switchedAt = runtime.instructions.lastIndexOf(users[users.length - 1]);
    expect(runtime.instructions.slice(switchedAt).filter(({ keyword }) => keyword === 'RUN')).toEqual([]);
  });

  test('starts node in exec form behind an init, so SIGTERM reaches the worker and it drains', () => {
    const last = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword).pop()?.args;
    const entrypoint = execForm(last('ENTRYPOINT') ?? '');
    const command = execForm(last('CMD') ?? '');
    expect(entrypoint).toBeDefined();
    expect(command).toEqual(['worker']);
    const argv = [...(entrypoint as string[]), ...(command as string[])];
    expect(argv.some((arg) => /(^|\/)(sh|bash)$/.test(arg))).toBe(false);
    expect(argv.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(argv.slice(2)).toEqual(['node', ...NODE_FLAGS, 'dist/client/cli.js', 'worker']);
    expect(runtime.instructions.some(({ keyword, args }) => keyword === 'RUN' && /\btini\b/.test(args))).toBe(
      true,
    );
    expect(last('STOPSIGNAL')).toBe('SIGTERM');
  });
});

describe('a worker started from the prebuilt workflow bundle', () => {
  let stage: Stage;
  let dir: string;
  const processes: ChildProcess[] = [];

  beforeAll(async () => {
    stage = await openStage();
    dir = await mkdtemp(join(tmpdir(), 'bulk-reset-bundle-'));
  });

  afterAll(async () => {
    for (const child of processes)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await stage?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function spawnWorker(env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string } {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    processes.push(child);
    let output = '';
    const keep = (chunk: Buffer) => {
      output = `${output}${chunk.toString()}`.slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    return { child, output: () => output };
  }

  test('runs a job without bundling at start, and stops cleanly on SIGTERM', async () => {
    const bundlePath = join(dir, 'workflow-bundle.js');
    // The command the Dockerfile's build stage runs.
    await runFile(process.execPath, [join(PROJECT_ROOT, 'dist', 'worker', 'bundle.js'), bundlePath]);
    expect((await stat(bundlePath)).size).toBeGreaterThan(100_000);

    const { child, output } = spawnWorker({ ...stage.env, [WORKFLOW_BUNDLE_ENV]: bundlePath });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const sample = sampleCsv(3, { scenario: 'ok', duplicateEvery: 0, invalidEvery: 0 });
    const csv = await checkCsv(await stage.writeCsv('users.csv', sample.text));
    const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
      windowSize: 3,
      policy: FAST_POLICY,
    });
    const final = await waitForJob(stage.client, jobId, () => undefined, 200);
    if (final.state !== 'completed')
      throw new Error(`job ${jobId} did not complete: ${JSON.stringify(final)}`);
    const report = await readJson<ReportJson>(final.summary.reportJsonPath);
    expect(report.outcomes.map(({ user, status }) => ({ user, status }))).toEqual(
      sample.rows.map(({ user }) => ({ user, status: 'succeeded' })),
    );
    for (const { user } of sample.rows) expect(stage.simulator.user(user)?.posts).toBe(1);

    child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // The SDK logs this whenever it runs webpack at start; from a prebuilt bundle it never does.
    expect(output()).toMatch(/Worker state changed/);
    expect(output()).not.toMatch(/Workflow bundle created/);
  });

  test('refuses to start, saying what to do, when the bundle it is pointed at is missing', async () => {
    const missing = join(dir, 'no-such-bundle.js');
    const { child, output } = spawnWorker({ ...stage.env, [WORKFLOW_BUNDLE_ENV]: missing });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).not.toBe(0);
    expect(output()).toContain(`${WORKFLOW_BUNDLE_ENV} names ${missing}, which cannot be read`);
  });
});
