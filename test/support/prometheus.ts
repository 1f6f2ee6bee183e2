/**
 * Reading a Prometheus text exposition, as a scraper would: the samples, and sums over series.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a `/metrics` answer (text format 0.0.4); comments and blank lines skipped. */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, char: string) => (char === 'n' ? '\n' : char));
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sum of every series of `name` whose labels include `where`. */
export function sumOf(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples
    .filter(
      (sample) =>
        sample.name === name && Object.entries(where).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** The sums of `name` by the value of one label. */
export function sumsBy(samples: Sample[], name: string, label: string): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const sample of samples) {
    if (sample.name !== name || sample.labels[label] === undefined) continue;
    sums[sample.labels[label]] = (sums[sample.labels[label]] ?? 0) + sample.value;
  }
  return sums;
}

/** Scrapes `/metrics` at each address and returns every sample of all of them. */
export async function scrape(...addresses: string[]): Promise<Sample[]> {
  const texts = await Promise.all(
    addresses.map(async (address) => {
      const response = await fetch(`http://${address}/metrics`);
      if (!response.ok) throw new Error(`scraping ${address} answered ${response.status}`);
      return response.text();
    }),
  );
  return texts.flatMap(parsePrometheus);
}

// Kept here too for the metrics tests that took it from this module first.
export { freePort } from './ports';
