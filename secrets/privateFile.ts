/**
 * The one way bulk-reset writes and reads a private file (keys, token cache, reports, plans): what the
 * secrets file already does, for whole files.
 *
 * Writing: the content goes to a temporary file with a random name in the target's folder, created
 * exclusively (O_EXCL, O_NOFOLLOW) with mode 0600, synced, then moved into place. A symbolic link at
 * the target is refused, never followed or replaced, so a link planted where a file will be written
 * cannot redirect it; an existing file is refused unless the caller asked to replace it. A reader never
 * sees half a file, and nobody else can read it at any moment.
 *
 * Reading: a secret file (a key, a token) that its group or others may read or write is refused with
 * the `chmod` to run, as ssh does for private keys. A link is followed when reading: secrets mounted
 * by Kubernetes or Docker are links.
 */
import { randomBytes } from 'node:crypto';
import { type Stats, closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { type FileHandle, copyFile, link, lstat, open, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Why a private file was refused. */
export type PrivateFileProblem = 'exists' | 'symlink' | 'not-a-file' | 'open-to-others';

/** A private file that must not be written or read as asked; `problem` says why, the message what to do. */
export class PrivateFileError extends Error {
  override name = 'PrivateFileError';
  constructor(
    message: string,
    readonly path: string,
    readonly problem: PrivateFileProblem,
  ) {
    super(message);
  }
}

export interface WritePrivateFileOptions {
  /** Replace a regular file already at the path. Default: an existing file is refused and left as it is. */
  replace?: boolean;
}

/** Whole content, or pieces of it (a generator, a read stream) for files too large to hold at once. */
export type PrivateContent = string | Uint8Array | AsyncIterable<string | Uint8Array>;

const FILE_MODE = 0o600;
/** Pieces are gathered into writes of about this size: one write per report row would be slow. */
const WRITE_CHUNK = 256 * 1024;
/** File systems that cannot make a hard link answer with one of these; see `placeWithoutReplacing`. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

/**
 * Writes `content` to `path` with mode 0600, atomically, never through a symbolic link and never over
 * an existing file unless `replace` is set. The folder must exist (callers create theirs 0700).
 */
export async function writePrivateFile(
  path: string,
  content: PrivateContent,
  { replace = false }: WritePrivateFileOptions = {},
): Promise<void> {
  await refuseUnsafeTarget(path, replace);
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const file = await open(
    temporary,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    FILE_MODE,
  );
  let placed = false;
  try {
    try {
      // The mode given to open() is filtered by the umask; make sure it is exactly 0600.
      await file.chmod(FILE_MODE);
      await writeContent(file, content);
      await file.sync();
    } finally {
      await file.close();
    }
    if (replace) {
      // Checked again at the last moment; rename() would replace a link itself, not write through it,
      // but a link where a file was asked for is refused all the same.
      await refuseUnsafeTarget(path, true);
      await rename(temporary, path);
      placed = true;
    } else {
      placed = await placeWithoutReplacing(temporary, path);
    }
  } finally {
    if (!placed) await rm(temporary, { force: true });
  }
  await syncFolder(dirname(path));
}

/**
 * Reads a secret file, refusing it when its group or others may read or write it (`what` names it in
 * the message, e.g. "the codec key file"). A missing file fails with the usual ENOENT error.
 */
export async function readPrivateFile(path: string, what: string): Promise<Buffer> {
  const file = await open(path, constants.O_RDONLY);
  try {
    refuseOpenToOthers(await file.stat(), path, what);
    return await file.readFile();
  } finally {
    await file.close();
  }
}

/** `readPrivateFile` for the few places that must read synchronously (the settings loader). */
export function readPrivateFileSync(path: string, what: string): Buffer {
  const descriptor = openSync(path, constants.O_RDONLY);
  try {
    refuseOpenToOthers(fstatSync(descriptor), path, what);
    return readFileSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}

function refuseOpenToOthers(stats: Stats, path: string, what: string): void {
  if (!stats.isFile()) {
    throw new PrivateFileError(`${what} ${path} is not a regular file`, path, 'not-a-file');
  }
  if ((stats.mode & 0o077) !== 0) {
    const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
    throw new PrivateFileError(
      `${what} ${path} has mode ${mode}: its group or others can read or change it, so it was not used; ` +
        `run \`chmod 600 ${path}\` (and consider the secret in it exposed if others could read it)`,
      path,
      'open-to-others',
    );
  }
}

async function refuseUnsafeTarget(path: string, replace: boolean): Promise<void> {
  let stats: Stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (stats.isSymbolicLink()) {
    throw new PrivateFileError(
      `${path} is a symbolic link: nothing was written to it or to what it points to; give the real path, or remove the link`,
      path,
      'symlink',
    );
  }
  if (!stats.isFile()) {
    throw new PrivateFileError(
      `${path} exists and is not a regular file: nothing was written`,
      path,
      'not-a-file',
    );
  }
  if (!replace) {
    throw new PrivateFileError(`${path} already exists: nothing was written to it`, path, 'exists');
  }
}

/**
 * Gives the finished temporary file its name only if nothing has that name yet, atomically: a hard
 * link fails when the name exists, whatever it is (a file or a link created since the check). Where
 * the file system has no hard links, an exclusive copy does the same, without the atomicity.
 */
async function placeWithoutReplacing(temporary: string, path: string): Promise<boolean> {
  try {
    await link(temporary, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new PrivateFileError(`${path} already exists: nothing was written to it`, path, 'exists');
    }
    if (!NO_HARD_LINKS.has(code ?? '')) throw error;
    await copyFile(temporary, path, constants.COPYFILE_EXCL).catch((copyError: NodeJS.ErrnoException) => {
      throw copyError.code === 'EEXIST'
        ? new PrivateFileError(`${path} already exists: nothing was written to it`, path, 'exists')
        : copyError;
    });
  }
  await unlink(temporary);
  return true;
}

async function writeContent(file: FileHandle, content: PrivateContent): Promise<void> {
  if (typeof content === 'string' || content instanceof Uint8Array) {
    await file.writeFile(content);
    return;
  }
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of content) {
    const bytes =
      typeof piece === 'string'
        ? Buffer.from(piece, 'utf8')
        : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    pending.push(bytes);
    pendingBytes += bytes.length;
    if (pendingBytes >= WRITE_CHUNK) {
      await file.writeFile(Buffer.concat(pending));
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pendingBytes > 0) await file.writeFile(Buffer.concat(pending));
}

/** Makes the new name durable too; a file system that cannot sync a folder is left to its own devices. */
async function syncFolder(folder: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(folder, constants.O_RDONLY);
    await handle.sync();
  } catch {
    // Not every platform lets a folder be opened or synced; the file itself is synced already.
  } finally {
    await handle?.close();
  }
}
