/**
 * What the benchmark plans and measures. The runner, both sides and the report share these, and the
 * JSON result is an object of these shapes.
 */
import type { OutcomeStatus, ResetPolicy } from '../workflows/types';

/** How the Graph simulator behaves in a run; both sides get a fresh simulator with the same settings. */
export interface SimulatorSettings {
  retryAfterSeconds: number;
  latencyMs: number;
  operationSeconds: number;
  /** Graph's token bucket on resetPassword POSTs; absent: no budget. */
  writeBudget?: { writes: number; perSeconds: number };
}

/** One run: the same users, window and policy for the orchestrator and the baseline. */
export interface RunPlan {
  scenario: string;
  /** Names the run in the tables: the scenario, plus the size when a scenario has several runs. */
  label: string;
  users: number;
  windowSize: number;
  simulator: SimulatorSettings;
  /** The worker's BULK_RESET_WRITES_PER_SECOND (Temporal's rate limit on the write queue); 0: none. */
  writesPerSecond: number;
  policy: ResetPolicy;
  /** `bulk-reset worker` processes polling the job's task queue (--workers); absent: one. */
  workers?: number;
  /**
   * Temporal's floor measured in the same run (bench/floorWorkflows.ts), each shape and the orchestrator
   * against a fresh Temporal server of the same settings; absent: no floor.
   */
  floors?: FloorShape[];
}

/** A minimal Temporal workflow shape measured as the floor bulk-reset is compared with. */
export type FloorShape = 'floor-activity' | 'floor-shape';

/** One floor shape's run: the same users, window and simulator settings as the orchestrator's. */
export interface FloorResult {
  shape: FloorShape;
  wallSeconds: number;
  usersPerSecond: number;
  /** Outcomes the parent counted. */
  succeeded: number;
  failed: number;
  simulator: SimulatorCounts;
  cpuSeconds: { simulator: number; worker: number; workerStartup: number; devServer?: number };
  /** VmHWM of the floor's worker process. */
  peakWorkerRssMb: number;
  /** History length of a sample of the users' workflows, spread evenly over the users. */
  userHistory: { sampled: number; average: number };
  /** The parent's runs (continue-as-new) and all their events together, per user. */
  parent: { runs: number; eventsPerUser: number };
}

/**
 * bulk-reset against one floor, each the orchestrator's figure divided by the floor's: users/s (1 is as
 * fast as the floor, below 1 slower), CPU per user and events per user (1 is as cheap, above 1 dearer).
 * Null where either side could not be measured.
 */
export interface FloorRatio {
  shape: FloorShape;
  usersPerSecond: number | null;
  devServerCpuPerUser: number | null;
  workerCpuPerUser: number | null;
  /** (user + job events per user) / (user + parent events per user). */
  eventsPerUser: number | null;
  peakWorkerRss: number | null;
}

/** Users with an outcome, and users started but not finished, `seconds` after the side started. */
export interface ProgressSample {
  seconds: number;
  done: number;
  inFlight: number;
}

/** The simulator's counters at the end of a side: the ground truth of what Graph saw. */
export interface SimulatorCounts {
  posts: number;
  resetsAccepted: number;
  polls: number;
  /** 429 answers, to POSTs and polls. */
  throttled: number;
  /** Requests sent before the Retry-After last given to that user had elapsed: must be 0. */
  earlyRequests: number;
  peakActiveUsers: number;
  peakConcurrentRequests: number;
}

/** CPU seconds spent during a side, per process. */
export interface CpuSeconds {
  /** The simulator's process. */
  simulator: number;
  /** This process: the baseline's requests, or the orchestrator side's progress queries. */
  benchProcess: number;
  /** The worker process, from the moment it polled until it was stopped (its start-up is apart). */
  worker?: number;
  /** The worker's start-up: loading, bundling the workflow code, connecting. */
  workerStartup?: number;
  /** The Temporal server while the job ran: the dev server, or the server and its PostgreSQL. */
  devServer?: number;
}

export interface SideResult {
  wallSeconds: number;
  usersPerSecond: number;
  outcomes: Record<OutcomeStatus, number>;
  simulator: SimulatorCounts;
  cpuSeconds: CpuSeconds;
  /**
   * The lowest rate over any 10 s of the steady state (from the first finished user until fewer than a
   * window of users remained); null when the steady state was shorter than 10 s.
   */
  lowestTenSecondUsersPerSecond: number | null;
  samples: ProgressSample[];
}

export interface Latency {
  p50: number;
  p95: number;
  max: number;
}

/** What one workflow run's history says. */
export interface HistoryFacts {
  events: number;
  eventTypes: Record<string, number>;
  /**
   * Its workflow tasks: how long each waited to be picked up by a worker (schedule-to-start) and how long
   * the worker then took to complete it (start-to-close, including the round trip to the server).
   */
  workflowTasks: { count: number; scheduleToStartMs: Latency; startToCloseMs: Latency };
}

/** What the downloaded CSV report holds, against the CSV's rows. */
export interface ReportCheck {
  /** Lines after the header. */
  lines: number;
  distinctRows: number;
  /** CSV rows with no line in the report. */
  missing: number;
  /** Lines for a row that already had one. */
  repeated: number;
  /** Lines whose first cell is not a row number. */
  unreadable: number;
  csvMb: number;
  jsonMb: number;
  /** How long `copyReport` (what `bulk-reset report --out` runs) took. */
  downloadSeconds: number;
}

export interface OrchestratorResult extends SideResult {
  jobId: string;
  taskQueue: string;
  /** VmHWM of the worker process. */
  peakWorkerRssMb: number;
  /** History length of a sample of the users' workflows, spread evenly over the CSV. */
  userHistory: {
    sampled: number;
    average: number;
    max: number;
    /** Where one user's events and time go: the first CSV row's workflow. */
    firstUser: HistoryFacts;
  };
  /** The job workflow's runs (continue-as-new) and their history lengths. */
  parent: {
    runs: number;
    historyLengths: number[];
    maxHistoryLength: number;
    /** All the job's runs' events together, per user. */
    eventsPerUser: number;
    /** Where the job's events and time go: its first run. */
    firstRun: HistoryFacts;
  };
  /** The job's report, downloaded and read back line by line. */
  report: ReportCheck;
  failedProgressSamples: number;
  /** How long `jobState` (describe + the progress query) took while the job ran. */
  progressQueryMs: Latency;
}

export interface RunResult {
  plan: RunPlan;
  orchestrator: OrchestratorResult;
  baseline?: SideResult;
  /** Orchestrator wall time / baseline wall time. */
  wallRatio?: number;
  /** Temporal's floor, when the plan asked for it, and bulk-reset's ratio to each shape. */
  floors?: FloorResult[];
  floorRatios?: FloorRatio[];
}

export interface MachineFacts {
  cpus: number;
  cpuModel: string;
  totalMemoryMb: number;
  node: string;
  platform: string;
  kernel: string;
  temporalCli: string;
}

export interface BenchResult {
  scenario: string;
  startedAt: string;
  finishedAt: string;
  argv: string[];
  machine: MachineFacts;
  /** Where the dev server kept its state (`--store`) and the SQLite pragmas it was given. */
  devServer: {
    persistence: 'wal' | 'rollback' | 'memory' | 'postgres';
    pragmas: Readonly<Record<string, string>>;
  };
  runs: RunResult[];
}
