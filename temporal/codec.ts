/**
 * Encryption of everything bulk-reset puts into Temporal: every payload (inputs, results, signals,
 * queries, updates, summaries, failure messages and details) is sealed with AES-256-GCM before it leaves
 * the client or the worker, so Temporal's history and its database hold only ciphertext. User principal
 * names, report paths and Graph's error messages are as private as the incident itself.
 *
 * Keys carry an id, written beside each payload: new payloads use the newest key, and older payloads
 * still open with the key they name, so keys can be rotated without losing history.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { open as openSealed, seal } from '../secrets/envelope';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  METADATA_ENCODING_KEY,
  type DataConverter,
  type Payload,
  type PayloadCodec,
  ValueError,
} from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { REFUSED_PAYLOAD_FIELD } from '../workflows/types';
import { PrivateFileError, readPrivateFile, writePrivateFile } from '../secrets/privateFile';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

export interface CodecKey {
  id: string;
  key: Buffer;
}

const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * What a codec does with a payload it cannot open (not sealed, sealed with a key it lacks, or forged):
 * - `throw` (clients, the codec server): the caller sees the error.
 * - `refuse` (workers): the payload is replaced by a refusal marker (workflows/types.ts
 *   REFUSED_PAYLOAD_FIELD) that the workflows refuse as an input, an update or a signal. Throwing here
 *   would fail the workflow task, again on every retry: one forged signal would stall a job for good.
 */
export type UnopenablePayloads = 'throw' | 'refuse';

export interface EncryptionCodecOptions {
  unopenable?: UnopenablePayloads;
  /** Told why each payload was refused (never its contents), with `unopenable: 'refuse'`. */
  onRefused?: (why: string) => void;
}

/** The payload workflows receive in place of one the workers' codec refused. */
const REFUSED_PAYLOAD: Payload = {
  metadata: { [METADATA_ENCODING_KEY]: Buffer.from('json/plain') },
  data: Buffer.from(JSON.stringify({ [REFUSED_PAYLOAD_FIELD]: true })),
};

/** AES-256-GCM over the whole serialized payload; the key id is authenticated too. */
export class EncryptionCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;

  /** `keys[0]` seals new payloads; every key opens the payloads that name it. */
  constructor(
    private readonly keys: readonly CodecKey[],
    private readonly options: EncryptionCodecOptions = {},
  ) {
    if (keys.length === 0) throw new Error('the payload codec needs at least one key');
    for (const { id, key } of keys) {
      if (!KEY_ID_PATTERN.test(id))
        throw new Error(`codec key id "${id}" must be 1-64 letters, digits, '.', '_' or '-'`);
      if (key.length !== 32) throw new Error(`codec key ${id} must be 32 bytes (AES-256), not ${key.length}`);
    }
    this.byId = new Map(keys.map(({ id, key }) => [id, key]));
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    const { id, key } = this.keys[0];
    // A failure to seal or open rejects the promise instead of throwing from the call.
    return new Promise((resolve) =>
      resolve(
        payloads.map((payload) => ({
          metadata: {
            [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING),
            [KEY_ID_METADATA]: Buffer.from(id),
          },
          // The key id is bound in as additional data: a payload cannot be passed off under another key.
          data: seal(key, temporal.api.common.v1.Payload.encode(payload).finish(), Buffer.from(id)),
        })),
      ),
    );
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    // A failure to seal or open rejects the promise instead of throwing from the call.
    return new Promise((resolve) => resolve(payloads.map((payload) => this.open(payload))));
  }

  private open(payload: Payload): Payload {
    const refuse = this.options.unopenable === 'refuse';
    const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
    if (!encoding || Buffer.from(encoding).toString() !== ENCRYPTED_ENCODING) {
      if (!refuse) return payload;
      this.options.onRefused?.('a payload that is not sealed (sent without the payload codec) was refused');
      return REFUSED_PAYLOAD;
    }
    const idBytes = payload.metadata?.[KEY_ID_METADATA];
    const id = idBytes ? Buffer.from(idBytes).toString() : '';
    const key = this.byId.get(id);
    if (!key) {
      const why = `a payload is sealed with key "${id}", which this process does not have`;
      if (!refuse) throw new ValueError(why);
      this.options.onRefused?.(`${why}: refused (add the key to BULK_RESET_CODEC_KEYS if it is yours)`);
      return REFUSED_PAYLOAD;
    }
    try {
      const opened = openSealed(key, payload.data ?? new Uint8Array(), Buffer.from(id));
      return temporal.api.common.v1.Payload.decode(opened);
    } catch (error) {
      const why = `a payload sealed with key "${id}" does not open (altered or forged)`;
      if (!refuse) throw new ValueError(why, error);
      this.options.onRefused?.(`${why}: refused`);
      return REFUSED_PAYLOAD;
    }
  }
}

/**
 * The data converter of every client and worker: the encryption codec, and failure messages and stack
 * traces moved into an (encrypted) payload instead of staying in plain text beside it.
 */
export function dataConverterFor(
  keys: readonly CodecKey[],
  options: EncryptionCodecOptions = {},
): DataConverter {
  return {
    payloadCodecs: [new EncryptionCodec(keys, options)],
    failureConverterPath: require.resolve('./failureConverter'),
  };
}

/**
 * The secret that keys user workflow ids (jobs/jobFiles.ts userKey), derived from the newest
 * payload key with HKDF-SHA256, so every worker of a deployment computes the same ids and nobody without
 * the key can. A rotated key changes the ids of jobs prepared afterwards only: a prepared job keeps its ids.
 */
export function workflowIdSecret(keys: readonly CodecKey[]): Buffer {
  return Buffer.from(hkdfSync('sha256', keys[0].key, Buffer.alloc(0), 'bulk-reset user workflow ids', 32));
}

/**
 * Parses keys written as `id:base64` (one per line or comma-separated; newest first). Blank lines and
 * `#` comments are ignored.
 */
export function parseCodecKeys(text: string, source: string): CodecKey[] {
  const keys: CodecKey[] = [];
  const entries = text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','));
  entries.forEach((raw, index) => {
    const entry = raw.trim();
    if (entry === '') return;
    const separator = entry.indexOf(':');
    if (separator <= 0) throw new Error(`${source} entry ${index + 1}: expected "id:base64-key"`);
    const id = entry.slice(0, separator);
    const key = Buffer.from(entry.slice(separator + 1), 'base64');
    if (keys.some((known) => known.id === id)) throw new Error(`${source}: key id "${id}" appears twice`);
    keys.push({ id, key });
  });
  if (keys.length === 0) throw new Error(`${source} holds no key`);
  new EncryptionCodec(keys); // validates ids and lengths with its own messages
  return keys;
}

/** A new key line for a key file: `k<date>-<random>:<base64>`. */
export function newCodecKeyLine(now = new Date()): string {
  const id = `k${now.toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(3).toString('hex')}`;
  return `${id}:${randomBytes(32).toString('base64')}`;
}

export interface CodecKeySource {
  /** `id:base64` entries, newest first (BULK_RESET_CODEC_KEYS). */
  inline?: string;
  /** A key file, newest first; created with one key (mode 0600) when missing. */
  file: string;
}

const KEY_FILE_HEADER =
  '# bulk-reset payload keys, newest first: id:base64. Keep this file secret and backed up.';
const KEY_FILE = 'the codec key file';

/**
 * The keys from the environment, else from the key file, which is created on first use. A key file its
 * group or others can read or change is refused: whoever reads it reads every job's history.
 */
export async function loadCodecKeys(source: CodecKeySource): Promise<CodecKey[]> {
  if (source.inline) return parseCodecKeys(source.inline, 'BULK_RESET_CODEC_KEYS');
  let text: string;
  try {
    text = (await readPrivateFile(source.file, KEY_FILE)).toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(dirname(source.file), { recursive: true, mode: 0o700 });
    text = `${KEY_FILE_HEADER}\n${newCodecKeyLine()}\n`;
    try {
      await writePrivateFile(source.file, text);
    } catch (writeError) {
      if (!(writeError instanceof PrivateFileError && writeError.problem === 'exists')) throw writeError;
      text = (await readPrivateFile(source.file, KEY_FILE)).toString('utf8'); // another process created it first
    }
  }
  return parseCodecKeys(text, source.file);
}

/**
 * Puts a new key first in the key file (older keys stay, to open older payloads). Returns its id. The
 * file is replaced atomically, never through a symbolic link.
 */
export async function rotateCodecKey(file: string): Promise<string> {
  const existing = await loadCodecKeys({ file });
  const line = newCodecKeyLine();
  const body = [line, ...existing.map(({ id, key }) => `${id}:${key.toString('base64')}`)].join('\n');
  await writePrivateFile(file, `${KEY_FILE_HEADER}\n${body}\n`, { replace: true });
  return line.slice(0, line.indexOf(':'));
}
