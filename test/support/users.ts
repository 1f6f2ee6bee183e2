/** The users a test names, and the CSV text that lists them. */
import { type SampleCsv, sampleCsv } from '../../simulator/sampleUsers';
import type { ScenarioName } from '../../simulator/graphSimulator';

/** A CSV with one column of user principal names, one user a line, as operators write it. */
export function upnCsv(users: readonly string[], header = 'userPrincipalName'): string {
  return `${header}\n${users.join('\n')}\n`;
}

/** `count` users `<prefix>.u1@<domain>`, `<prefix>.u2@<domain>`, ...: the prefix picks the simulator's scenario. */
export function numberedUsers(prefix: string, count: number, domain = 'contoso.test'): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}.u${index + 1}@${domain}`);
}

/** The sample CSV of `count` users of one scenario, with no duplicate and no invalid row. */
export function oneScenarioCsv(count: number, scenario: ScenarioName, domain?: string): SampleCsv {
  return sampleCsv(count, { scenario, duplicateEvery: 0, invalidEvery: 0, domain });
}
