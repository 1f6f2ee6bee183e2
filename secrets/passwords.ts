/**
 * The passwords the tool generates (password mode `generated`): from Node's CSPRNG, one per request, with
 * every character class Entra ID's complexity rules count.
 */
import { randomInt } from 'node:crypto';

/** Shortest length of a generated password. */
export const MIN_GENERATED_PASSWORD_LENGTH = 16;
/** Entra ID accepts passwords of at most 256 characters. */
export const MAX_PASSWORD_LENGTH = 256;

/**
 * The four classes. Look-alike characters (I, l, O, 0, 1) are left out so a password read aloud by a
 * helpdesk is not mistyped; the symbols are ones Entra ID accepts and shells and CSV cells leave alone.
 */
export const PASSWORD_CLASSES: readonly string[] = [
  'ABCDEFGHJKLMNPQRSTUVWXYZ',
  'abcdefghijkmnopqrstuvwxyz',
  '23456789',
  '!#%*+-=?@^_~.:',
];

const ALPHABET = PASSWORD_CLASSES.join('');

/** An integer in [0, max), uniform: the caller must never reduce it further (no `% n` anywhere). */
export type UniformInt = (max: number) => number;

/**
 * A new random password of `length` characters with at least one of each class, uniform over all such
 * passwords: every character is one uniform draw over the whole alphabet (crypto.randomInt rejects the
 * raw values that would bias it), and a draw that misses a class is thrown away as a whole and drawn
 * again (about 1 in 7 at length 16, fewer when longer). Forcing one character per class instead would
 * favour the smaller classes and their positions.
 */
export function generatePassword(length: number, uniform: UniformInt = randomInt): string {
  if (!Number.isInteger(length) || length < MIN_GENERATED_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    throw new RangeError(
      `a generated password must be ${MIN_GENERATED_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long, not ${length}`,
    );
  }
  for (;;) {
    let password = '';
    for (let i = 0; i < length; i++) password += ALPHABET[uniform(ALPHABET.length)];
    if (hasEveryClass(password)) return password;
  }
}

/** Whether the password holds at least one character of each class. */
export function hasEveryClass(password: string): boolean {
  return PASSWORD_CLASSES.every((characters) => [...password].some((char) => characters.includes(char)));
}
