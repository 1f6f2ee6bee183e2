/**
 * The password flags of `start` (`--password`, `--password-length`, `--secrets-file`,
 * `--secrets-recipient`) and `bulk-reset secrets decrypt`, the recipient's way to read a secrets file.
 */
import { access, readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Command, Option, type OptionValues } from '@commander-js/extra-typings';
import { csvLine, neutraliseCell } from '../jobs/csvWriter';
import { readPrivateFile } from '../secrets/privateFile';
import { MAX_PASSWORD_LENGTH, MIN_GENERATED_PASSWORD_LENGTH } from '../secrets/passwords';
import { privateKeyFrom, readCurrentSecrets, recipientKey } from '../secrets/secretsFile';
import {
  DEFAULT_GENERATED_PASSWORD_LENGTH,
  PASSWORD_MODES,
  type PasswordMode,
  type PasswordSettings,
  type ResetMethod,
} from '../workflows/types';
import { wholeNumber } from './jobFlags';

/** The password flags on `command`: the mode and length are checked as they are read. */
export function addPasswordFlags<Args extends unknown[], Opts extends OptionValues>(
  command: Command<Args, Opts>,
) {
  return command
    .addOption(
      new Option(
        '--password <mode>',
        'where each new password comes from (see README: Passwords) (default: graph; generated with --method password-profile)',
      ).choices(PASSWORD_MODES),
    )
    .addOption(
      new Option(
        '--password-length <n>',
        `length of a generated password (default: ${DEFAULT_GENERATED_PASSWORD_LENGTH})`,
      ).argParser(wholeNumber(MIN_GENERATED_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH)),
    )
    .addOption(
      new Option(
        '--secrets-file <file>',
        "a new file, on the worker's host, that receives each accepted password (mode 0600)",
      ),
    )
    .addOption(
      new Option(
        '--secrets-recipient <public.pem>',
        "encrypt the secrets file's passwords to this RSA public key",
      ),
    );
}

export interface PasswordFlagValues {
  password?: PasswordMode;
  passwordLength?: number;
  secretsFile?: string;
  secretsRecipient?: string;
}

/** A password flag the operator got wrong: the CLI prints it and exits with 2. */
export class PasswordFlagError extends Error {}

export interface PasswordChoice {
  settings: PasswordSettings;
  /** The recipient's public key (PEM), with --secrets-recipient. */
  recipientPem?: string;
  /** What the operator must hear before the job starts (printed to stderr). */
  notices: string[];
}

export async function passwordChoiceFromFlags(
  values: PasswordFlagValues,
  method: ResetMethod = 'reset-password',
): Promise<PasswordChoice> {
  // Graph generates a password only for resetPassword: a passwordProfile PATCH needs the worker's.
  const mode = values.password ?? (method === 'password-profile' ? 'generated' : 'graph');
  if (!PASSWORD_MODES.includes(mode)) {
    throw new PasswordFlagError(`--password is ${PASSWORD_MODES.join(', ')}; not "${mode}"`);
  }
  if (mode === 'graph' && method === 'password-profile') {
    throw new PasswordFlagError(
      '--password graph does not go with --method password-profile: Graph generates no password for a passwordProfile PATCH; use --password generated (the default for this method) or csv',
    );
  }
  const settings: PasswordSettings = { mode };
  const notices: string[] = [];
  if (values.passwordLength !== undefined) {
    if (mode !== 'generated') throw new PasswordFlagError('--password-length goes with --password generated');
    const length = values.passwordLength;
    if (!Number.isInteger(length) || length < MIN_GENERATED_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
      throw new PasswordFlagError(
        `--password-length must be a whole number from ${MIN_GENERATED_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH}`,
      );
    }
    settings.length = length;
  } else if (mode === 'generated') {
    settings.length = DEFAULT_GENERATED_PASSWORD_LENGTH;
  }
  if (mode === 'csv') {
    notices.push(
      "WARNING: the new passwords come from the CSV's newPassword column. That file now holds every " +
        'new password in plain text: whoever can read it, its backups or copies can sign in as these ' +
        'users. Prefer --password generated; if you keep this, delete the CSV safely once the job is done ' +
        '(it must stay unchanged until then).',
    );
  }
  let recipientPem: string | undefined;
  if (values.secretsFile !== undefined) {
    settings.secretsFile = await newSecretsFilePath(values.secretsFile);
    if (values.secretsRecipient !== undefined) {
      recipientPem = await readFile(values.secretsRecipient, 'utf8');
      recipientKey(recipientPem);
      notices.push(
        `the new passwords go to ${settings.secretsFile} on the worker's host, encrypted to the key in ${values.secretsRecipient}: only its private key opens them (bulk-reset secrets decrypt)`,
      );
    } else {
      notices.push(
        `the new passwords go to ${settings.secretsFile} on the worker's host, in plain text (mode 0600): protect it, hand it over, then delete it`,
      );
    }
  } else if (values.secretsRecipient !== undefined) {
    throw new PasswordFlagError('--secrets-recipient goes with --secrets-file');
  } else {
    notices.push(
      'nobody receives the new passwords: users regain access through the helpdesk or a Temporary Access Pass',
    );
  }
  return { settings, recipientPem, notices };
}

/** A `--secrets-file` path, absolute, that no file holds yet: the job creates it. */
export async function newSecretsFilePath(value: string): Promise<string> {
  // Resolved here: the worker runs elsewhere, with another working directory.
  const path = resolve(value);
  if (await exists(path)) {
    throw new PasswordFlagError(
      `the secrets file ${path} already exists; each job needs a new one (the job creates it)`,
    );
  }
  return path;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * `bulk-reset secrets decrypt [--key private.pem] [--out file] <secrets file>`: the current password of
 * every user, as CSV (row, user, password), to stdout or to a new file of mode 0600. Its cells come from
 * the one CSV writer, so a password that looks like a formula gets a `'` that is not part of it; the
 * operator is told when one does, and the README says how to read the exact password.
 */
export async function decryptSecrets(
  secretsPath: string,
  options: { key?: string; out?: string },
): Promise<number> {
  const privateKey = options.key
    ? privateKeyFrom(
        (await readPrivateFile(options.key, 'the private key')).toString('utf8'),
        process.env.BULK_RESET_SECRETS_KEY_PASSPHRASE,
      )
    : undefined;
  const secrets = await readCurrentSecrets(secretsPath, privateKey);
  // Every value quoted: a password may hold any character, and a quoted cell shows where it ends.
  const text = [
    csvLine(['row', 'user', 'password']),
    ...secrets.map((secret) => csvLine([secret.row, secret.user, secret.password], { quote: 'always' })),
  ].join('\n');
  if (options.out) {
    await writeFile(options.out, `${text}\n`, { mode: 0o600, flag: 'wx' });
    console.error(`${secrets.length} current passwords written to ${options.out} (mode 0600)`);
  } else {
    process.stdout.write(`${text}\n`);
  }
  const marked = secrets.filter((secret) => neutraliseCell(secret.password) !== secret.password).length;
  if (marked > 0) {
    console.error(
      `${marked} of the ${secrets.length} passwords hold a character a spreadsheet would run as a formula: ` +
        `a ' was added in front of it, which is not part of the password (a generated password's cell then ` +
        `starts with ', and the password is the rest; README, "Passwords")`,
    );
  }
  return 0;
}
