/**
 * Types that cross the workflow/activity/client boundary. Workflows, activities and the CLI all import
 * them from here, so a field means the same thing everywhere.
 */
import { ApplicationFailure, SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';

/**
 * Search attributes on every job (and on the users of jobs started before users were started in
 * batches), so `temporal workflow list` and the Web UI can filter jobs by id (`BulkResetJobId = "..."`)
 * and by phase. They must be registered on the namespace (the dev server here does it; see README for a
 * real cluster). A job's users are found by their workflow ids instead: see userWorkflowsQuery.
 */
export const JOB_ID_SEARCH_ATTRIBUTE = defineSearchAttributeKey(
  'BulkResetJobId',
  SearchAttributeType.KEYWORD,
);
export const JOB_PHASE_SEARCH_ATTRIBUTE = defineSearchAttributeKey(
  'BulkResetPhase',
  SearchAttributeType.KEYWORD,
);

/**
 * The visibility query (`temporal workflow list --query`, the Web UI's filter) that lists a job's users,
 * optionally only those that ended in one state (`Failed`, `Completed`): every user's workflow id starts
 * with `<jobId>/user-`, so no search attribute on the users is needed.
 */
export function userWorkflowsQuery(jobId: string, executionStatus?: string): string {
  const byId = `WorkflowId STARTS_WITH "${jobId}/user-"`;
  return executionStatus ? `${byId} AND ExecutionStatus="${executionStatus}"` : byId;
}

/** The CSV is passed by reference: the worker reads it from this path and refuses it if its hash differs. */
export interface CsvReference {
  /** Absolute path readable by the workers. */
  path: string;
  /** Lower-case hex SHA-256 of the file's bytes, taken when the job was started. */
  sha256: string;
}

/** How a CSV row names its user: Graph accepts either in `/users/{id | userPrincipalName}`. */
export type UserIdKind = 'userPrincipalName' | 'id';

/** A CSV row that will be reset. */
export interface UserRow {
  /** Line number in the CSV file (the header is line 1); what the report and errors call "row". */
  row: number;
  /** The user as written in the CSV (trimmed), used in the Graph URL. */
  user: string;
  idKind: UserIdKind;
  /**
   * A stable, opaque key for the user within the job (a hash of the job id and the lower-cased user):
   * it names the user's workflow without putting the user's name in workflow ids.
   */
  key: string;
}

/** Every CSV row ends in exactly one of these. */
export type OutcomeStatus = 'succeeded' | 'failed' | 'unconfirmed' | 'skipped' | 'cancelled';

/** What happened to one CSV row: one line of the report. Never carries a password or a token. */
export interface ResetOutcome {
  row: number;
  /** The user as written in the CSV; empty when the row had none. */
  user: string;
  status: OutcomeStatus;
  /** Why, in words an operator can act on; always set unless the status is `succeeded`. */
  reason?: string;
  /** Graph's long-running operation id, once the reset was accepted. */
  operationId?: string;
  /** Status polls made on the operation. */
  polls: number;
  /** resetPassword requests sent (retries included); above 1 only after a transient failure. */
  startAttempts: number;
  /**
   * How many times the reset was sent again after a request whose fate was unknown (the connection
   * dropped after sending): Graph may have applied the reset more than once. 0 normally.
   */
  ambiguousResends?: number;
  /**
   * `passwordChange` when the reset was confirmed not by polling its operation but by the user's
   * lastPasswordChangeDateTime moving past the value read before the first request (after a request that
   * got no answer had in fact landed). Absent when the operation itself said `succeeded`.
   */
  confirmedBy?: 'passwordChange';
  /** HTTP status of the Graph answer that decided a failure. */
  httpStatus?: number;
  /** Graph error code (`Authorization_RequestDenied`, ...) or the operation's final status. */
  graphCode?: string;
  /** Graph's request-id of the call that decided a failure: what Microsoft support asks for. */
  requestId?: string;
  /** ISO timestamps of the user's reset (workflow time), absent for rows never started. */
  startedAt?: string;
  finishedAt?: string;
  /**
   * For failed rows: whether the failure was passing trouble (throttling, outages, timeouts) that a later
   * try may get past, as opposed to a refusal (403, 404, a password policy). `bulk-reset retry` uses it.
   */
  retryable?: boolean;
  /** With the job's revoke option: whether the user's sign-in sessions were revoked after the reset. */
  sessionsRevoked?: boolean;
  /**
   * With the job's confirmCompromised option, on succeeded rows: whether Identity Protection was told the
   * user is compromised (`confirmCompromised`). False comes with confirmedCompromisedReason.
   */
  confirmedCompromised?: boolean;
  /** Why the user was not confirmed compromised (confirmedCompromised false). */
  confirmedCompromisedReason?: string;
}

/** How one user's reset waits and when it gives up. All durations in milliseconds. */
export interface ResetPolicy {
  /** Lower bound for any wait between polls, whatever Retry-After says. */
  minWaitMs: number;
  /** Upper bound for any wait between polls. */
  maxWaitMs: number;
  /** Wait when Graph sends no Retry-After; doubled for each further answer without one, up to maxWaitMs. */
  defaultWaitMs: number;
  /** After this long since the user's reset began, stop: the outcome is failed or unconfirmed, never succeeded. */
  deadlineMs: number;
  /** Longest a single Graph request may take before it is abandoned and retried. */
  requestTimeoutMs: number;
  /** After a confirmed reset, revoke the user's sign-in sessions (`revokeSignInSessions`). */
  revokeSessions?: boolean;
  /** Where each new password comes from and whether it is kept; absent means Graph generates it, nobody keeps it. */
  password?: PasswordSettings;
  /**
   * The longest a user waits, in all, for the operator's sign-in to work again (users started with
   * `followThrough`); past it the user ends `failed` (retryable). Default DEFAULT_MAX_SIGN_IN_HOLD_MS.
   */
  maxSignInHoldMs?: number;
  /**
   * Containment: every user whose reset succeeded is confirmed compromised in Identity Protection, in
   * batches sent by the job (see workflows/containment.ts). Absent in jobs started before it existed.
   */
  confirmCompromised?: true;
  /**
   * How the password is changed (absent: `reset-password`, so users started before this field replay as
   * they ran). `password-profile` PATCHes the user's passwordProfile: synchronous, allowed app-only, the
   * password always supplied by the worker (mode `generated` or `csv`).
   */
  method?: ResetMethod;
  /** `password-profile`: the user must choose a new password at next sign-in (forceChangePasswordNextSignIn). */
  forceChange?: boolean;
  /** `password-profile`: the user must pass MFA before choosing it (forceChangePasswordNextSignInWithMfa). */
  forceChangeWithMfa?: boolean;
}

/**
 * - `reset-password`: Graph's resetPassword, a long-running operation polled to its end; delegated only.
 * - `password-profile`: `PATCH /users/{id}` with a passwordProfile, answered 204 at once; delegated or app-only.
 */
export type ResetMethod = 'reset-password' | 'password-profile';

export const RESET_METHODS: readonly ResetMethod[] = ['reset-password', 'password-profile'];

/**
 * A job's run continues as new once its history has this many events: well before Temporal's 10,240-event
 * warning. The benchmark's floor parents (bench/floorWorkflows.ts) use the same number.
 */
export const DEFAULT_MAX_HISTORY_EVENTS = 4_000;

/** How long a user waits in all for the operator's sign-in (`--sign-in-hold`) unless the job says otherwise. */
export const DEFAULT_MAX_SIGN_IN_HOLD_MS = 2 * 60 * 60_000;

/**
 * Where a user's new password comes from:
 * - `graph`: Graph generates it (cloud-only accounts);
 * - `generated`: the worker generates it with a CSPRNG and sends it (needed for hybrid accounts);
 * - `csv`: the CSV's `newPassword` column, read by the worker that sends it, never passed through Temporal.
 */
export type PasswordMode = 'graph' | 'generated' | 'csv';

export const PASSWORD_MODES: readonly PasswordMode[] = ['graph', 'generated', 'csv'];

/** Default length of a generated password (its bounds live with the generator, secrets/passwords.ts). */
export const DEFAULT_GENERATED_PASSWORD_LENGTH = 20;

/** A job's password settings. Never holds a password, only how to get one and where it may go. */
export interface PasswordSettings {
  mode: PasswordMode;
  /** Length of a generated password (mode `generated`). */
  length?: number;
  /**
   * A secrets file on the worker host that receives `user, password` records once Graph accepted a reset;
   * absent means nobody receives the new password. Created by the job (mode 0600), never the report.
   */
  secretsFile?: string;
}

export const DEFAULT_RESET_POLICY: ResetPolicy = {
  minWaitMs: 1_000,
  maxWaitMs: 60_000,
  defaultWaitMs: 2_000,
  deadlineMs: 15 * 60_000,
  requestTimeoutMs: 30_000,
};

export interface ResetUserInput {
  jobId: string;
  target: UserRow;
  policy: ResetPolicy;
  /** The job's CSV, in password mode `csv` only: the worker that sends the reset reads the password there. */
  csv?: CsvReference;
  /**
   * Set for users started since an accepted reset is followed to its end: an operation status this tool
   * does not know is polled again (not ended on), a sign-in hold is bounded by the policy's
   * maxSignInHoldMs, and the user completes even when its job is gone. Absent in users started before,
   * which keep the old behaviour: the field, not a patch marker, tells them apart.
   */
  followThrough?: true;
  /**
   * `local`: poll the operation with a local activity (every user started since that change). Absent in
   * users started before it, which keep polling with an activity: the field, not a `patched()` marker,
   * tells the two apart, so new users pay no marker and no search-attribute upsert for it.
   */
  polls?: 'local';
  /**
   * `outcome`: the workflow ends in the state that matches the outcome, so the Temporal Web UI colours
   * and filters users by it: a `failed` user's workflow fails (USER_FAILED_TYPE, the outcome in its
   * details); every other outcome completes. Absent in users started before this field, which complete
   * whatever happened: the field, not a patch marker, tells them apart, and costs no event.
   */
  endState?: 'outcome';
  /** Continue as new at this many history events instead of USER_CONTINUE_AS_NEW_EVENTS (tests). */
  continueAsNewAt?: number;
  /**
   * The workflow id of the job this user reports its outcome (and sign-in holds) to. Set for users a job
   * started in batches through an activity (`userStarts: 'batched'`): they have no parent. Absent in users
   * started as children, which report to their parent.
   */
  reportTo?: string;
  /** Where a continued run of this user's workflow picks up (continue-as-new, users with followThrough). */
  carried?: ResetUserCarried;
}

/**
 * The failure type of a user's workflow that ended with a `failed` outcome (users started with
 * `endState: 'outcome'`). Its first detail is the ResetOutcome. The Web UI lists a job's failed users with
 * `userWorkflowsQuery(job, 'Failed')`.
 */
export const USER_FAILED_TYPE = 'BulkResetUserFailed';

/** The outcome a user's workflow failed with (USER_FAILED_TYPE), found in its failure; undefined otherwise. */
export function outcomeOfFailedUser(error: unknown): ResetOutcome | undefined {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof ApplicationFailure && cause.type === USER_FAILED_TYPE) {
      const [outcome] = cause.details ?? [];
      return isResetOutcome(outcome) ? outcome : undefined;
    }
  }
  return undefined;
}

/** Whether a value (a workflow's decoded result, say) is a user's outcome. */
export function isResetOutcome(value: unknown): value is ResetOutcome {
  const candidate = value as Partial<ResetOutcome> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.row === 'number' &&
    typeof candidate.status === 'string' &&
    (OUTCOME_STATUSES as readonly string[]).includes(candidate.status)
  );
}

/** A sign-in hold's progress, kept across continue-as-new. */
export interface SignInHoldState {
  /** Workflow time the current hold began; absent when not holding. */
  heldSinceMs?: number;
  /** Waits in the current hold so far. */
  waits: number;
  /** Time held in holds that have ended. */
  endedHoldsMs: number;
}

/**
 * Everything a user's workflow needs to go on in a new run: the outcome so far, the deadline (which does
 * not move), the sign-in hold, the baseline read, the sends and their accounting, and the operation being
 * polled. Nothing here is a secret: the same facts are in the outcome and the history already.
 */
export interface ResetUserCarried {
  outcome: ResetOutcome;
  deadlineMs: number;
  signIn: SignInHoldState;
  /** Present once the baseline read is done; `at` is absent when the time could not be read. */
  baseline?: { at?: number };
  sends: number;
  ambiguousResends: number;
  lastSendAmbiguous: boolean;
  ambiguityChecked: boolean;
  resendCountedAmbiguous: boolean;
  unsentAttempts: number;
  accepted?: StartResetResult;
  /** Set once polling began. */
  polling?: true;
  retryAfterMs?: number;
  answersWithoutRetryAfter: number;
  lastSeen: string;
  /** How many runs this user's workflow has taken. */
  runs: number;
}

export interface StartResetInput {
  jobId: string;
  user: string;
  /** The user's CSV row (absent in inputs from before password modes). */
  row?: number;
  /** Which request for this user this is (1 for the first): the secrets file keeps the last accepted one. */
  attempt?: number;
  password?: PasswordSettings;
  /** Mode `csv`: where the row's password is, checked against its SHA-256 before it is used. */
  csv?: CsvReference;
}

/** One passwordProfile PATCH: a reset's request, with the flags the PATCH carries. */
export interface SetPasswordProfileInput extends StartResetInput {
  forceChange: boolean;
  forceChangeWithMfa?: boolean;
}

/** Graph accepted the reset. Deliberately has no password field: a generated password never leaves the activity. */
export interface StartResetResult {
  /** The operation URL exactly as Graph sent it; absent when Graph sent no Location. */
  operationUrl?: string;
  operationId?: string;
  retryAfterMs?: number;
  requestId?: string;
  /** The previous request for this user provably never left a worker (see jobs/sendJournal). */
  previousAttemptUnsent?: true;
}

/** One user the job asks Identity Protection to confirm compromised: its row and the user as the CSV names it. */
export interface ContainmentTarget {
  row: number;
  user: string;
}

export interface ConfirmCompromisedInput {
  /** At most CONFIRM_BATCH_SIZE users, all of whose resets succeeded. */
  users: ContainmentTarget[];
}

/** What one confirmCompromised batch did, per row: every row of the input is in exactly one list. */
export interface ConfirmCompromisedResult {
  confirmed: number[];
  /** Rows left out of the request (the user could not be resolved, or is protected), with why. */
  notConfirmed: { row: number; reason: string }[];
  /** Graph's request-id of the confirmCompromised request, when one was sent. */
  requestId?: string;
}

/**
 * The failure type of a confirmCompromised Graph refused for the whole tenant or caller (no Entra ID P2
 * licence, no IdentityRiskyUser.ReadWrite.All, no Security Administrator role): every batch would get the
 * same answer, so the job sends no more and records the one reason on every row it concerns.
 */
export const CONTAINMENT_REFUSED = 'ContainmentRefused';

export interface RevokeSessionsInput {
  user: string;
}

export interface ReadPasswordChangeInput {
  user: string;
}

export interface ReadPasswordChangeResult {
  /** Graph's ISO time, absent when Graph gave none. */
  lastPasswordChangeDateTime?: string;
}

export interface PollOperationInput {
  user: string;
  operationUrl: string;
}

export interface PollOperationResult {
  /** Graph's status string as sent; workflows treat anything but the known values as unknown. */
  status: string;
  statusDetail?: string;
  retryAfterMs?: number;
  requestId?: string;
  /** How many GETs this poll took (Temporal retries it): each one reached Graph or may have. */
  attempts?: number;
}

/** What a Graph failure carries through Temporal (ApplicationFailure details): no secrets, no bodies. */
/**
 * The failure type (and `graphCode`) of a write the worker refused because Graph's identity of the user is
 * on the protected-accounts list (see graph/protectedWrites): the user ends `skipped`, nothing sent.
 */
export const PROTECTED_ACCOUNT = 'ProtectedAccount';

export interface GraphFailureDetails {
  httpStatus?: number;
  graphCode: string;
  requestId?: string;
  /** The request may have been applied although no answer came back. */
  ambiguous: boolean;
  /** Graph's Retry-After, when it sent one with the failure. */
  retryAfterMs?: number;
  /** `permanent`, `transient` or `auth` (see graph/errors). */
  kind: 'permanent' | 'transient' | 'auth';
  /** The activity attempt that failed (a poll's attempts are its GETs). */
  attempt?: number;
  /** On a reset: the previous request for this user provably never left a worker. */
  previousAttemptUnsent?: true;
}

export interface BulkResetInput {
  /**
   * The job id; always the parent workflow's id. Absent when a Temporal Schedule starts the job: each
   * of its runs gets a fresh workflow id, which becomes the job id.
   */
  jobId?: string;
  csv: CsvReference;
  /** Most users in flight at once (default 100). */
  windowSize: number;
  policy: ResetPolicy;
  /**
   * Continue as new once the run's history passes this many events (default DEFAULT_MAX_HISTORY_EVENTS;
   * Temporal also suggests it).
   */
  maxHistoryEvents?: number;
  /** Users continue as new at this many events instead of their default (tests). */
  userMaxHistoryEvents?: number;
  /**
   * How often a run asks Temporal whether users inherited from an earlier run ended without reporting
   * (default 2 minutes).
   */
  inheritedCheckMs?: number;
  /** Who started the job (the operator's identity as the CLI knows it). */
  startedBy?: string;
  /** Wait for a second identity to approve before any reset. */
  approval?: ApprovalRequest;
  /** Run exactly the users of this plan (`bulk-reset plan`): anything else in the CSV is skipped. */
  plan?: PlanReference;
  /** The job whose failed rows this job retries. */
  retryOf?: string;
  /**
   * A recipient's RSA public key (PEM): the secrets file's passwords are encrypted to it, so only the holder
   * of the private key can read them. Public, so it may sit in the history.
   */
  secretsRecipient?: string;
  /**
   * `batched`: users are started in batches by the startUsers activity, not as children, and report once,
   * by signal; the job looks for users ended without reporting by asking Temporal now and then (see
   * inheritedCheckMs), for every user in flight. Set for every job started since; absent in jobs started
   * before (and their continued runs), which start children as they always did: the field, not a patch
   * marker, tells them apart.
   */
  userStarts?: 'batched';
  /** State carried over continue-as-new; absent on the first run. */
  carried?: BulkResetCarried;
}

export interface ApprovalRequest {
  /** How long to wait for the approval before the job ends as cancelled. */
  timeoutMs: number;
}

/** A plan file by reference, like the CSV. */
export interface PlanReference {
  path: string;
  /** SHA-256 of the plan file, taken when the job was started. */
  sha256: string;
}

/** An operator's request to pause, resume, cancel or approve a job. */
export interface ControlRequest {
  /** The operator's identity as the CLI knows it (BULK_RESET_OPERATOR, else user@host). */
  by: string;
  reason?: string;
  /**
   * With `approve`: the SHA-256 of the prepared rows (or its first 12 or more hex digits) that the
   * approver was shown. The approval is refused if the job's rows are not those.
   */
  rowsSha256?: string;
}

/**
 * An operator's identity as it is recorded and compared: Unicode NFKC (full-width and other look-alike
 * forms folded), with control and format characters (zero-width spaces, direction marks) removed and
 * the ends trimmed. Compare two of them case-insensitively (`sameOperator`).
 */
export function normaliseOperator(name: string): string {
  return name
    .normalize('NFKC')
    .replace(/[\p{Cc}\p{Cf}]/gu, '')
    .trim();
}

export function sameOperator(a: string | undefined, b: string | undefined): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    normaliseOperator(a).toLowerCase() === normaliseOperator(b).toLowerCase()
  );
}

/**
 * What the workers' payload codec hands the workflow code in place of a payload it cannot open: one not
 * sealed with a key the workers hold (sent in plain JSON without the codec, or forged). Workflows refuse
 * such an input, update or signal instead of acting on it (see isRefusedPayload); the codec turns it into
 * this value rather than failing the workflow task, so a forged message cannot stall a job.
 */
export const REFUSED_PAYLOAD_FIELD = 'bulkResetRefusedPayload';

/** Whether a workflow input, update or signal argument was refused by the workers' payload codec. */
export function isRefusedPayload(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<string, unknown>)[REFUSED_PAYLOAD_FIELD] === true
  );
}

/** Why a refused payload is refused, in the words every refusal uses. */
export const REFUSED_PAYLOAD_REASON =
  "it is not sealed with a key this deployment's workers hold (sent without the payload codec, or forged)";

/**
 * Ends a workflow at once whose input the workers' codec refused (`whose`: "this job's"); `nothing`
 * says what was therefore not done. The workflow issues no command before it.
 */
export function refuseUnsealedInput(input: unknown, whose: string, nothing: string): void {
  if (!isRefusedPayload(input)) return;
  throw ApplicationFailure.create({
    message: `${whose} input is refused: ${REFUSED_PAYLOAD_REASON}; ${nothing}`,
    type: 'InputRefused',
    nonRetryable: true,
  });
}

/** Pause, cancel and approval state; carried over continue-as-new. */
export interface JobControl {
  paused: boolean;
  pausedBy?: string;
  cancel?: { by: string; at: string; reason: string };
  /** Set once the unstarted rows have been recorded as cancelled. */
  cancelRecorded?: boolean;
  approvedBy?: string;
  approvedAt?: string;
}

export interface CancelRowsInput {
  jobId: string;
  /** Rows already read into the workflow but not started. */
  pendingRows: UserRow[];
  /** Where the unread rows begin in the job's row file; absent when every row was read. */
  byteOffset?: number;
  reason: string;
}

/** The parent's state between runs: counters and at most one window and one page of rows. */
export interface BulkResetCarried {
  prepared: PreparedJob;
  startedAt: string;
  nextByteOffset: number;
  rowsExhausted: boolean;
  pendingRows: UserRow[];
  inFlight: InFlightUser[];
  counts: Record<OutcomeStatus, number>;
  dispatched: number;
  runs: number;
  control: JobControl;
  /** With confirmCompromised: succeeded outcomes waiting for their batch, and the counts so far. */
  containment?: ContainmentState;
}

/** The job's containment state between runs (continue-as-new): small, as the pending list is bounded. */
export interface ContainmentState {
  /** Succeeded outcomes not yet confirmed; recorded to the ledger only once their batch has ended. */
  pending: ResetOutcome[];
  confirmed: number;
  notConfirmed: number;
  /** Set once Graph refused confirmCompromised for the whole job: nothing more is sent. */
  refused?: string;
  /** Workflow time the oldest pending outcome started waiting for a batch; absent when none waits. */
  pendingSinceMs?: number;
  /** Workflow time the last batch ended (the next waits at least CONFIRM_SPACING_MS after it). */
  lastSentAtMs?: number;
}

export interface InFlightUser {
  row: number;
  user: string;
  workflowId: string;
  /** The user's workflow is holding until the operator's sign-in works again. */
  needsSignIn?: boolean;
}

/** One user's workflow for the startUsers activity to start: its id, input and Web UI summary. */
export interface UserStart {
  workflowId: string;
  input: ResetUserInput;
  staticSummary: string;
}

export interface StartUsersInput {
  jobId: string;
  /** The task queue of the users' workflows: the job's own. */
  taskQueue: string;
  users: UserStart[];
}

/** How many users' workflows the startUsers activity started, and how many an earlier attempt had. */
export interface StartUsersResult {
  started: number;
  alreadyStarted: number;
}

export interface EndedUserWorkflowsInput {
  workflowIds: string[];
}

/** A user's workflow that is no longer running, with Temporal's status for it. */
export interface EndedUserWorkflow {
  workflowId: string;
  /** `completed`, `failed`, `cancelled`, `terminated`, `timed out`, or `not found`. */
  status: string;
  /**
   * The outcome the workflow ended with (its result, or the details of its failure), when it ended with
   * one: a user whose report never reached the job still gets its own outcome. Absent from answers
   * recorded before it was read.
   */
  outcome?: ResetOutcome;
}

export interface PrepareJobInput {
  jobId: string;
  csv: CsvReference;
  plan?: PlanReference;
  /** The job's password settings: the CSV's newPassword column is required in mode `csv`, refused otherwise. */
  password?: PasswordSettings;
  /** See BulkResetInput.secretsRecipient. */
  secretsRecipient?: string;
}

/** The CSV has been checked and split into the rows to run and the rows skipped (already recorded). */
export interface PreparedJob {
  /** Data rows in the CSV (blank lines excluded). */
  totalRows: number;
  /** Valid, unique rows that will be reset. */
  runnableRows: number;
  /** Invalid or duplicate rows, already recorded as skipped. */
  skippedRows: number;
  /**
   * SHA-256 of the prepared rows file, as prepared: what an approver approves. Every page read afterwards
   * is checked against it. Absent in jobs prepared before the check existed.
   */
  rowsSha256?: string;
}

export interface ReadRowsInput {
  jobId: string;
  byteOffset: number;
  limit: number;
  /** The rows file must still have this SHA-256 (PreparedJob.rowsSha256), or no row is returned. */
  rowsSha256?: string;
}

export interface ReadRowsResult {
  rows: UserRow[];
  nextByteOffset: number;
  exhausted: boolean;
}

export interface RecordOutcomesInput {
  jobId: string;
  outcomes: ResetOutcome[];
}

export interface WriteReportInput {
  jobId: string;
  csv: CsvReference;
  startedAt: string;
  /** Who started, approved or cancelled the job, and what it retried: recorded in the report. */
  record?: JobRecord;
}

/** How a job ran: what `bulk-reset retry` repeats for the rows that failed. */
export interface JobSettings {
  windowSize: number;
  /** Waits, deadline, session revocation and password settings (never a password). */
  policy: ResetPolicy;
  /** The public key the secrets file was encrypted to, if any. */
  secretsRecipient?: string;
}

export interface JobRecord {
  /** Absent in reports written before jobs recorded it. */
  settings?: JobSettings;
  startedBy?: string;
  approvedBy?: string;
  approvedAt?: string;
  cancelledBy?: string;
  cancelReason?: string;
  retryOf?: string;
  /** With confirmCompromised: how many rows were confirmed, how many not, and the job-level refusal if any. */
  containment?: ContainmentSummary;
}

export interface ContainmentSummary {
  confirmed: number;
  notConfirmed: number;
  /** Graph's refusal of confirmCompromised for the whole job (licence, permission), in one sentence. */
  refused?: string;
}

export interface JobSummary {
  jobId: string;
  total: number;
  counts: Record<OutcomeStatus, number>;
  reportCsvPath: string;
  reportJsonPath: string;
  startedAt: string;
  finishedAt: string;
  /** With confirmCompromised: rows confirmed and not, and the job-level refusal if any. */
  containment?: ContainmentSummary;
}

/** What the `progress` query answers. */
export type JobPhase =
  | 'preparing'
  | 'awaiting-approval'
  | 'running'
  | 'needs-sign-in'
  | 'paused'
  | 'cancelling'
  | 'reporting'
  | 'done';

/** What a user's workflow tells its job about the operator's sign-in. */
export interface SignInState {
  row: number;
  /** True when Graph refused the token (or none could be had) and the user waits; false once it works again. */
  needed: boolean;
}

export interface JobProgress {
  jobId: string;
  phase: JobPhase;
  /** Data rows in the CSV, once prepared. */
  total?: number;
  /** Rows with a final outcome. */
  done: number;
  inFlight: number;
  /** Users in flight that wait for the operator to sign in again (`bulk-reset login`). */
  needSignIn?: number;
  /** Rows handed to a user workflow so far. */
  dispatched: number;
  counts: Record<OutcomeStatus, number>;
  /** How many runs the job has taken (continue-as-new). */
  runs: number;
  startedAt?: string;
  startedBy?: string;
  approvedBy?: string;
  cancelledBy?: string;
  /** Valid, unique rows to reset, once prepared. */
  runnable?: number;
  /** SHA-256 of the prepared rows (what an approval approves), once prepared. */
  rowsSha256?: string;
}

export const OUTCOME_STATUSES: readonly OutcomeStatus[] = [
  'succeeded',
  'failed',
  'unconfirmed',
  'skipped',
  'cancelled',
];

export function emptyCounts(): Record<OutcomeStatus, number> {
  return { succeeded: 0, failed: 0, unconfirmed: 0, skipped: 0, cancelled: 0 };
}

/** The task queue that carries resetPassword POSTs, rate-limited to the tenant's write budget. */
export function writeTaskQueue(taskQueue: string): string {
  return `${taskQueue}-writes`;
}
