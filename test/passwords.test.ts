/**
 * The generator of password mode `generated`: length, all four classes, uniform draws only, unique.
 */
import { randomInt } from 'node:crypto';
import { PASSWORD_CLASSES, generatePassword, hasEveryClass } from '../secrets/passwords';

const ALPHABET = PASSWORD_CLASSES.join('');

test('a generated password has the asked length and a character of every class', () => {
  for (const length of [16, 20, 64, 256]) {
    for (let i = 0; i < 200; i++) {
      const password = generatePassword(length);
      expect(password).toHaveLength(length);
      for (const characters of PASSWORD_CLASSES) {
        expect([...password].some((char) => characters.includes(char))).toBe(true);
      }
      expect([...password].every((char) => ALPHABET.includes(char))).toBe(true);
    }
  }
});

test('lengths under 16 or over 256, and fractions, are refused', () => {
  for (const length of [0, 8, 15, 257, 20.5, Number.NaN]) {
    expect(() => generatePassword(length)).toThrow(RangeError);
  }
});

test('every character is one uniform draw over the whole alphabet: nothing is reduced modulo', () => {
  // The generator's only source of randomness is the injected draw; record what it asks for.
  const asked: number[] = [];
  const password = generatePassword(24, (max) => {
    asked.push(max);
    return randomInt(max);
  });
  expect(password).toHaveLength(24);
  // Only draws over exactly the alphabet, in whole passwords of 24 (a rejected draw is thrown away whole).
  expect(new Set(asked)).toEqual(new Set([ALPHABET.length]));
  expect(asked.length % 24).toBe(0);
});

test('a draw that misses a class is thrown away, not patched', () => {
  // A source that first gives only lower-case letters, then a spread: the first password is rejected.
  let calls = 0;
  const password = generatePassword(16, (max) => {
    calls += 1;
    return calls <= 16 ? PASSWORD_CLASSES[0].length : (calls * 7) % max;
  });
  expect(calls).toBeGreaterThan(16);
  expect(hasEveryClass(password)).toBe(true);
});

test('within each class every character is equally likely (chi-square)', () => {
  const counts = new Map<string, number>();
  for (let i = 0; i < 4_000; i++) {
    for (const char of generatePassword(20)) counts.set(char, (counts.get(char) ?? 0) + 1);
  }
  // Rejecting passwords that miss a class lifts the small classes a little (by design: uniform over the
  // valid passwords), so compare characters within a class. 67 degrees of freedom in all: an unbiased
  // generator stays near 67 (150 is beyond p = 1e-10), while a modulo bias such as a random byte % 71
  // favours some characters by a third and gives thousands.
  let chiSquare = 0;
  for (const characters of PASSWORD_CLASSES) {
    const observed = [...characters].map((char) => counts.get(char) ?? 0);
    const expected = observed.reduce((sum, count) => sum + count, 0) / characters.length;
    for (const count of observed) chiSquare += (count - expected) ** 2 / expected;
  }
  expect(chiSquare).toBeLessThan(150);
  expect(counts.size).toBe(ALPHABET.length);
});

test('10,000 generated passwords are all different', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) seen.add(generatePassword(16));
  expect(seen.size).toBe(10_000);
});
