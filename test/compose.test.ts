/**
 * temporal-docker/ as Docker Compose will read it, on a machine without Docker: the files are loaded
 * by compose-go (the library `docker compose config` is built on: interpolation, required variables,
 * the Compose JSON schema, overrides, profiles), through scripts/compose-config. Then the resolved
 * project is held against this project: the image it builds, the variables bulk-reset reads, the
 * codec server the Web UI calls, the Temporal release the tests run on, the task queue, the search
 * attributes the workflows set.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual, promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { newCodecKeyLine } from '../temporal/codec';
import { type Settings, loadSettings } from '../temporal/config';
import { PROJECT_ROOT } from '../temporal/devServer';
import { JOB_ID_SEARCH_ATTRIBUTE, JOB_PHASE_SEARCH_ATTRIBUTE } from '../workflows/types';
import { testTemporalAddress } from './support/harness';

const run = promisify(execFile);
const COMPOSE_DIR = join(PROJECT_ROOT, 'temporal-docker');
const COMPOSE_FILE = join(COMPOSE_DIR, 'docker-compose.yml');
const REHEARSAL_FILE = join(COMPOSE_DIR, 'docker-compose.rehearsal.yml');

interface Port {
  host_ip?: string;
  target: number;
  published?: string;
}

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[] | null;
  entrypoint?: string[] | null;
  environment?: Record<string, string | null>;
  ports?: Port[];
  volumes?: { type: string; source?: string; target: string; read_only?: boolean }[];
  profiles?: string[];
}

interface Project {
  name: string;
  services: Record<string, Service>;
}

let checker: string;
let scratch: string;
/** .env.example as a deployment fills it in: the required secrets get stand-in values. */
let exampleVariables: Map<string, string>;
let project: Project;

/** The `${NAME:?message}` variables: Compose refuses the project when one is unset or empty. */
async function requiredVariables(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  return [...new Set([...text.matchAll(/\$\{([A-Z0-9_]+):\?/g)].map((match) => match[1]))].sort();
}

function parseEnvFile(text: string): Map<string, string> {
  const variables = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) variables.set(match[1], match[2]);
  }
  return variables;
}

/** Loads the project as `docker compose [-f ...] [--profile ...] config` would, with these variables. */
async function load(
  variables: Map<string, string>,
  { files = [COMPOSE_FILE], profiles = [] as string[] } = {},
): Promise<Project> {
  const envFile = join(scratch, `vars-${Math.random().toString(36).slice(2)}.env`);
  await writeFile(envFile, [...variables].map(([name, value]) => `${name}=${value}`).join('\n') + '\n');
  const args = ['--dir', COMPOSE_DIR, '--env-file', envFile];
  for (const profile of profiles) args.push('--profile', profile);
  // Only PATH: a developer's own TEMPORAL_* or POSTGRES_PASSWORD must not leak into the check.
  const { stdout } = await run(checker, [...args, ...files], {
    env: { PATH: process.env.PATH },
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Project;
}

async function loadFailure(
  variables: Map<string, string>,
  options?: Parameters<typeof load>[1],
): Promise<string> {
  try {
    await load(variables, options);
  } catch (error) {
    return String((error as { stderr?: string }).stderr ?? error);
  }
  throw new Error('Compose accepted the project');
}

function service(name: string, from: Project = project): Service {
  const found = from.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
}

function environmentOf(name: string, from: Project = project): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service(name, from).environment ?? {}).map(([key, value]) => [key, value ?? '']),
  );
}

/** The value after `flag` in a service's command. */
function flagValue(command: string[] | null | undefined, flag: string): string[] {
  const values: string[] = [];
  (command ?? []).forEach((part, index) => {
    if (part === flag && command) values.push(command[index + 1]);
  });
  return values;
}

/** Everything loadSettings returns, the non-enumerable API key included. */
function settingsView(settings: Settings): unknown {
  return { ...settings, temporal: { ...settings.temporal, apiKey: settings.temporal.apiKey } };
}

beforeAll(async () => {
  const { stdout } = await run('bash', [join(PROJECT_ROOT, 'scripts', 'ensure-compose-config.sh')], {
    timeout: 15 * 60_000,
  });
  checker = stdout.trim();
  scratch = await mkdtemp(join(tmpdir(), 'bulk-reset-compose-'));
  exampleVariables = parseEnvFile(await readFile(join(COMPOSE_DIR, '.env.example'), 'utf8'));
  const standIns: Record<string, string> = {
    POSTGRES_PASSWORD: 'stand-in-password',
    AZURE_TENANT_ID: '00000000-0000-0000-0000-000000000001',
    AZURE_CLIENT_ID: '00000000-0000-0000-0000-000000000002',
    BULK_RESET_TOKEN_CACHE_KEY: Buffer.alloc(32, 7).toString('base64'),
    BULK_RESET_CODEC_KEYS: newCodecKeyLine(),
  };
  for (const [name, value] of Object.entries(standIns)) {
    if (exampleVariables.get(name) === '') exampleVariables.set(name, value);
  }
  project = await load(exampleVariables);
}, 20 * 60_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test('Compose accepts the file with the example settings and runs the production services', () => {
  expect(project.name).toBe('bulk-reset');
  expect(Object.keys(project.services).sort()).toEqual([
    'codec-server',
    'postgresql',
    'temporal',
    'temporal-namespace',
    'temporal-schema',
    'temporal-ui',
    'worker',
  ]);
  // The simulator is for rehearsals only: it needs its profile.
  expect(project.services.simulator).toBeUndefined();
});

test('every variable the file requires is in .env.example, and Compose refuses the project without it', async () => {
  const required = await requiredVariables(COMPOSE_FILE);
  expect(required).toEqual(['BULK_RESET_CODEC_KEYS', 'POSTGRES_PASSWORD']);
  for (const name of required) {
    expect(exampleVariables.has(name)).toBe(true);
    const without = new Map(exampleVariables);
    without.set(name, '');
    expect(await loadFailure(without)).toContain(`set ${name} in temporal-docker/.env`);
  }
});

test('the worker and the codec server run the image built from this project with temporal-docker/Dockerfile', () => {
  for (const name of ['worker', 'codec-server']) {
    const { image, build } = service(name);
    expect(image).toBe('bulk-reset:local');
    expect(build?.context).toBe(PROJECT_ROOT);
    expect(build?.dockerfile).toBe('temporal-docker/Dockerfile');
  }
  expect(existsSync(join(PROJECT_ROOT, 'temporal-docker', 'Dockerfile'))).toBe(true);
  // The worker runs the image's default command (`worker`); the codec server its own subcommand.
  expect(service('worker').command ?? null).toBeNull();
  expect(service('codec-server').command?.[0]).toBe('codec-server');
});

test('every variable set for the worker and the codec server changes what bulk-reset reads', () => {
  const files = [
    ['worker', environmentOf('worker')],
    ['codec-server', environmentOf('codec-server')],
  ] as const;
  for (const [name, environment] of files) {
    const base = settingsView(loadSettings(environment));
    for (const variable of Object.keys(environment)) {
      const changed = settingsView(loadSettings({ ...environment, [variable]: 'changed-value' }));
      if (isDeepStrictEqual(base, changed)) {
        throw new Error(`${name}: ${variable} is set in docker-compose.yml but bulk-reset does not read it`);
      }
    }
  }
  // And what they resolve to is this stack: its server, its namespace, the shared volume, the keys.
  const worker = loadSettings(environmentOf('worker'));
  expect(worker.temporal).toMatchObject({ address: 'temporal:7233', namespace: 'default' });
  expect(worker.temporal.tls).toBeUndefined();
  expect(worker.dataDir).toBe('/data');
  expect(service('worker').volumes).toContainEqual(
    expect.objectContaining({ type: 'volume', source: 'bulk-reset-data', target: '/data' }),
  );
  const codec = loadSettings(environmentOf('codec-server'));
  expect(codec.codecKeys.inline).toBe(worker.codecKeys.inline);
  expect(codec.codecKeys.inline).toBe(exampleVariables.get('BULK_RESET_CODEC_KEYS'));
});

test("the workers' Temporal address is the temporal service's frontend port", () => {
  const [host, port] = environmentOf('worker').TEMPORAL_ADDRESS.split(':');
  expect(host).toBe('temporal');
  expect(service('temporal').ports?.map((published) => published.target)).toContain(Number(port));
  expect(environmentOf('temporal-namespace').TEMPORAL_ADDRESS).toBe(`temporal:${port}`);
  expect(environmentOf('temporal-ui').TEMPORAL_ADDRESS).toBe(`temporal:${port}`);
});

test('published ports listen on 127.0.0.1 only', () => {
  for (const [name, { ports = [] }] of Object.entries(project.services)) {
    for (const published of ports) expect(`${name} ${published.host_ip}`).toBe(`${name} 127.0.0.1`);
  }
});

describe('the Web UI and the codec server', () => {
  /** What the browser needs: the UI calls the codec server's published address, which answers the UI's. */
  function wiring(from: Project) {
    const ui = environmentOf('temporal-ui', from);
    const uiPort = service('temporal-ui', from).ports?.[0];
    const codecServer = service('codec-server', from);
    const codecPort = codecServer.ports?.[0];
    return {
      codecEndpoint: ui.TEMPORAL_CODEC_ENDPOINT,
      codecPublished: `http://${codecPort?.host_ip}:${codecPort?.published}`,
      codecListens: flagValue(codecServer.command, '--port'),
      codecTarget: String(codecPort?.target),
      uiPublished: `http://${uiPort?.host_ip}:${uiPort?.published}`,
      uiOrigins: flagValue(codecServer.command, '--ui-origin'),
      uiCorsOrigins: ui.TEMPORAL_CORS_ORIGINS,
      passAccessToken: ui.TEMPORAL_CODEC_PASS_ACCESS_TOKEN,
    };
  }

  test("the UI's codec endpoint is the codec server's published port, and it answers the UI's address", async () => {
    const defaults = wiring(project);
    // What must hold whatever the ports: the browser's two addresses line up with what is published.
    expect(defaults.codecEndpoint).toBe(defaults.codecPublished);
    expect(defaults.codecListens).toEqual([defaults.codecTarget]);
    expect(defaults.uiOrigins).toEqual([defaults.uiPublished]);
    expect(defaults.uiCorsOrigins).toBe(defaults.uiPublished);
    expect(defaults).toEqual({
      codecEndpoint: 'http://127.0.0.1:8888',
      codecPublished: 'http://127.0.0.1:8888',
      codecListens: ['8888'],
      codecTarget: '8888',
      uiPublished: 'http://127.0.0.1:8080',
      uiOrigins: ['http://127.0.0.1:8080'],
      uiCorsOrigins: 'http://127.0.0.1:8080',
      // This UI has no sign-in: no access token to pass (the codec server could not check one).
      passAccessToken: 'false',
    });

    // Moving the ports in .env keeps the two in step.
    const moved = new Map(exampleVariables);
    moved.set('TEMPORAL_UI_PORT', '9080');
    moved.set('BULK_RESET_CODEC_SERVER_PORT', '9888');
    const movedWiring = wiring(await load(moved));
    expect(movedWiring.codecEndpoint).toBe('http://127.0.0.1:9888');
    expect(movedWiring.codecPublished).toBe('http://127.0.0.1:9888');
    expect(movedWiring.uiOrigins).toEqual(['http://127.0.0.1:9080']);
    expect(movedWiring.uiCorsOrigins).toBe('http://127.0.0.1:9080');
  });

  test('the UI variables are ones the pinned Web UI image reads', () => {
    expect(service('temporal-ui').image).toBe('temporalio/ui:2.49.1');
    // The names of temporalio/ui-server's docker config template (server/config/docker.yaml).
    const known = new Set([
      'TEMPORAL_ADDRESS',
      'TEMPORAL_DEFAULT_NAMESPACE',
      'TEMPORAL_CORS_ORIGINS',
      'TEMPORAL_CODEC_ENDPOINT',
      'TEMPORAL_CODEC_PASS_ACCESS_TOKEN',
      'TEMPORAL_CODEC_INCLUDE_CREDENTIALS',
    ]);
    for (const name of Object.keys(environmentOf('temporal-ui')))
      expect(`${name}: ${known.has(name)}`).toBe(`${name}: true`);
  });

  test("the codec server, run with the compose file's command and variables, decrypts for the UI's origin only", async () => {
    const codecServer = service('codec-server');
    const command = [...(codecServer.command ?? [])];
    // Inside its container it listens on 0.0.0.0:8888; here, on a free loopback port.
    command[command.indexOf('--host') + 1] = '127.0.0.1';
    command[command.indexOf('--port') + 1] = '0';
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), ...command], {
      env: { PATH: process.env.PATH, HOME: scratch, ...environmentOf('codec-server') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const url = await new Promise<string>((found, fail) => {
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /codec server at (http:\/\/\S+),/.exec(output);
          if (match) found(match[1]);
        });
        child.stderr.on('data', (chunk: Buffer) => {
          output += chunk.toString();
        });
        child.once('exit', (code) => fail(new Error(`codec-server exited with ${code}: ${output}`)));
      });
      const uiOrigin = wiring(project).uiPublished;
      const preflight = await fetch(`${url}/decode`, {
        method: 'OPTIONS',
        headers: { Origin: uiOrigin, 'Access-Control-Request-Method': 'POST' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(uiOrigin);

      const decoded = await fetch(`${url}/decode`, {
        method: 'POST',
        headers: { Origin: uiOrigin, 'Content-Type': 'application/json' },
        body: JSON.stringify({ payloads: [] }),
      });
      expect(decoded.status).toBe(200);

      const elsewhere = await fetch(`${url}/decode`, {
        method: 'POST',
        headers: { Origin: 'http://127.0.0.1:9999', 'Content-Type': 'application/json' },
        body: JSON.stringify({ payloads: [] }),
      });
      expect(elsewhere.status).toBe(403);
    } finally {
      child.kill('SIGTERM');
    }
  });
});

test('the Temporal server is the release line the tests run against, with admin tools of the same release', async () => {
  const server = /^temporalio\/server:(\d+)\.(\d+)\.(\d+)$/.exec(service('temporal').image ?? '');
  expect(server).not.toBeNull();
  const [, major, minor, patch] = server as RegExpExecArray;
  expect(service('temporal-schema').image).toMatch(
    new RegExp(`^temporalio/admin-tools:${major}\\.${minor}\\.${patch}-`),
  );
  expect(service('temporal-namespace').image).toBe(service('temporal-schema').image);

  const connection = await Connection.connect({ address: testTemporalAddress() });
  try {
    const { serverVersion } = await connection.workflowService.getSystemInfo({});
    // The dev server of scripts/ensure-temporal.sh: same major and minor release.
    expect(serverVersion?.split('.').slice(0, 2).join('.')).toBe(`${major}.${minor}`);
  } finally {
    await connection.close();
  }
});

test("the task queue is bulk-reset's default, in the file and in .env.example", () => {
  const defaults = loadSettings({});
  expect(environmentOf('worker').BULK_RESET_TASK_QUEUE).toBe(defaults.taskQueue);
  expect(exampleVariables.get('BULK_RESET_TASK_QUEUE')).toBe(defaults.taskQueue);
});

test('the namespace job registers exactly the search attributes the workflows set, as Keyword', async () => {
  const namespaceJob = service('temporal-namespace');
  expect(namespaceJob.entrypoint).toEqual(['/bin/sh', '/scripts/create-namespace.sh']);
  expect(namespaceJob.volumes).toContainEqual(
    expect.objectContaining({ source: join(COMPOSE_DIR, 'scripts'), target: '/scripts', read_only: true }),
  );
  const script = await readFile(join(COMPOSE_DIR, 'scripts', 'create-namespace.sh'), 'utf8');
  const loop = /for attribute in ([^;]+);/.exec(script);
  expect(loop).not.toBeNull();
  const registered = (loop as RegExpExecArray)[1].trim().split(/\s+/).sort();
  expect(registered).toEqual([JOB_ID_SEARCH_ATTRIBUTE.name, JOB_PHASE_SEARCH_ATTRIBUTE.name].sort());
  expect(script).toContain('--type Keyword');
  for (const key of [JOB_ID_SEARCH_ATTRIBUTE, JOB_PHASE_SEARCH_ATTRIBUTE]) expect(key.type).toBe('KEYWORD');
});

describe('the rehearsal override', () => {
  test('points the workers at the simulator with its token, and needs the rehearsal profile', async () => {
    const rehearsal = await load(exampleVariables, {
      files: [COMPOSE_FILE, REHEARSAL_FILE],
      profiles: ['rehearsal'],
    });
    const simulator = service('simulator', rehearsal);
    const worker = loadSettings(environmentOf('worker', rehearsal));
    expect(worker.graphBaseUrl).toBe(flagValue(simulator.command, '--public-url')[0]);
    expect(worker.credential.graphToken).toBe(environmentOf('simulator', rehearsal).GRAPH_TOKEN);
    expect(simulator.image).toBe(service('worker').image);

    const failure = await loadFailure(exampleVariables, { files: [COMPOSE_FILE, REHEARSAL_FILE] });
    expect(failure).toMatch(/simulator/);
  });
});
