/**
 * The activities: thin functions over the Graph client and the job files. They are the only code that
 * touches the network and the disk; each turns what it meets into a Temporal failure exactly once.
 */
import {
  ApplicationFailure,
  ApplicationFailureCategory,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
} from '@temporalio/common';
import { Context } from '@temporalio/activity';
import {
  type WorkflowExecutionStatusName,
  type WorkflowHandle,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import type {
  CancelRowsInput,
  ConfirmCompromisedInput,
  ConfirmCompromisedResult,
  EndedUserWorkflow,
  EndedUserWorkflowsInput,
  GraphFailureDetails,
  PollOperationInput,
  PollOperationResult,
  PrepareJobInput,
  PlanReference,
  PreparedJob,
  ReadRowsInput,
  ReadPasswordChangeInput,
  ReadPasswordChangeResult,
  ResetOutcome,
  RevokeSessionsInput,
  ReadRowsResult,
  RecordOutcomesInput,
  SetPasswordProfileInput,
  StartResetInput,
  StartResetResult,
  StartUsersInput,
  StartUsersResult,
  WriteReportInput,
} from '../workflows/types';
import { CsvInputError, readCsvPasswords, sha256File } from '../jobs/csvReader';
import type { GraphClient } from '../graph/client';
import { ALL_ADVICE, GraphError, adviceFor, reportHintFor } from '../graph/errors';
import { isProtected, loadProtectedUsers } from '../jobs/protectedUsers';
import { createWriteGuard } from '../graph/protectedWrites';
import { createSendJournal, recordSendIntent, sendJournalPath, sendWasIntended } from '../jobs/sendJournal';
import {
  JOB_FOLDER_TAKEN,
  type JobClaim,
  JobFolderTakenError,
  type JobPaths,
  PlanMismatchError,
  RowsChangedError,
  checkJobOwner,
  checkRowsUnchanged,
  claimJobFolder,
  jobPaths,
  preparedRowKeys,
  prepareJobFiles,
  readRowsPage,
} from '../jobs/jobFiles';
import {
  type ReportJson,
  type ReportRowContext,
  type ReportedJobSummary,
  type WebUi,
  appendOutcomes,
  writeReport,
} from '../jobs/report';
import { userWorkflowId } from '../workflows/bulkReset';
import { PlanFileError, readPlanFile } from '../jobs/planFile';
import { generatePassword } from '../secrets/passwords';
import {
  type SecretsWriter,
  SecretsFileError,
  createSecretsFile,
  openSecretsWriter,
} from '../secrets/secretsFile';
import {
  CONTAINMENT_REFUSED,
  type CsvReference,
  DEFAULT_GENERATED_PASSWORD_LENGTH,
  PROTECTED_ACCOUNT,
  type PasswordMode,
  isResetOutcome,
  outcomeOfFailedUser,
} from '../workflows/types';
import { CONFIRM_BACKOFF, CONFIRM_SPACING_MS, jitteredBackoffMs } from '../workflows/waits';

export interface ActivityDependencies {
  graph: GraphClient;
  /** Folder for job files; shared by all workers of a job. */
  dataDir: string;
  /** The protected-accounts list (never reset), read afresh each time a job is prepared. */
  protectedUsersPath?: string;
  /** The deployment's secret that keys user workflow ids (see jobFiles.userKey). */
  userKeySecret: Buffer;
  /** The Temporal Web UI, when its address is known: the report links each user's workflow there. */
  webUi?: WebUi;
}

/** A plan the worker cannot trust stops the job at once, with the plan file's own words. */
async function readPlan(plan: PlanReference, csvSha256: string): Promise<Set<string>> {
  try {
    return await readPlanFile(plan, csvSha256);
  } catch (error) {
    if (error instanceof PlanFileError) {
      throw ApplicationFailure.create({ message: error.message, type: error.problem, nonRetryable: true });
    }
    throw error;
  }
}

/** A job folder that belongs to another job stops this one at once: retrying cannot make it ours. */
function jobFolderFailure(error: unknown): unknown {
  if (!(error instanceof JobFolderTakenError)) return error;
  return ApplicationFailure.create({ message: error.message, type: JOB_FOLDER_TAKEN, nonRetryable: true });
}

/** The job's files, once checked to belong to the workflow of this activity (checkJobOwner). */
async function ownedJobPaths(dataDir: string, jobId: string): Promise<JobPaths> {
  const paths = jobPaths(dataDir, jobId);
  try {
    await checkJobOwner(paths, Context.current().info.workflowExecution?.workflowId ?? '');
  } catch (error) {
    throw jobFolderFailure(error);
  }
  return paths;
}

/** The ApplicationFailure type of a request refused for the operator's sign-in (401, no token). */
export const SIGN_IN_REQUIRED = 'SignInRequired';

/** What a Graph failure tells the workflow (status, code, request-id, Retry-After, kind), plus `extra`. */
function failureDetailsOf(
  error: GraphError,
  extra: Pick<GraphFailureDetails, 'attempt' | 'previousAttemptUnsent'> = {},
): GraphFailureDetails {
  return {
    ...extra,
    httpStatus: error.status,
    graphCode: error.code,
    requestId: error.requestId,
    ambiguous: error.ambiguous,
    retryAfterMs: error.retryAfterMs,
    kind: error.kind,
  };
}

/**
 * Turns a Graph failure into the Temporal failure that makes the workflow do the right thing.
 *
 * A refused or missing token (`auth`) is not the user's fault and Graph applied nothing: it becomes a
 * non-retryable `SignInRequired` that the user's workflow holds on (durable waits, no deadline spent)
 * until the sign-in works again. `retrySignIn` leaves it to Temporal's retries instead, for a follow-up
 * call that the workflow does not hold for.
 */
export function toActivityFailure(
  error: unknown,
  user: string,
  {
    retrySignIn = false,
    details: extra = {},
    passwordMode,
  }: {
    retrySignIn?: boolean;
    details?: Pick<GraphFailureDetails, 'attempt' | 'previousAttemptUnsent'>;
    /** The job's password mode, where the call sends a password: the hint fits it. */
    passwordMode?: PasswordMode;
  } = {},
): unknown {
  if (!(error instanceof GraphError)) return error;
  const details = failureDetailsOf(error, extra);
  const requestId = error.requestId ? `, request-id ${error.requestId}` : '';
  const message = `user ${user}: ${error.message}${requestId}; ${adviceFor(error.status, error.code, passwordMode)}`;
  if (error.kind === 'permanent') {
    return ApplicationFailure.create({
      message,
      type: 'GraphPermanentError',
      nonRetryable: true,
      details: [details],
    });
  }
  if (error.kind === 'auth' && !retrySignIn) {
    return ApplicationFailure.create({
      message,
      type: SIGN_IN_REQUIRED,
      nonRetryable: true,
      details: [details],
      category: ApplicationFailureCategory.BENIGN,
    });
  }
  if (error.ambiguous) {
    // The workflow decides whether to send it again: it must know the reset may already have landed.
    return ApplicationFailure.create({
      message,
      type: 'GraphAmbiguousError',
      nonRetryable: true,
      details: [details],
      category: ApplicationFailureCategory.BENIGN,
    });
  }
  return ApplicationFailure.create({
    message,
    type: error.kind === 'auth' ? 'GraphAuthError' : 'GraphTransientError',
    nextRetryDelay: error.retryAfterMs,
    details: [details],
    // Throttling and passing trouble are expected and handled: logged at debug level, not as warnings.
    category: ApplicationFailureCategory.BENIGN,
  });
}

/** The protected list, or a job failure: a list that cannot be read must not mean "protect nobody". */
async function protectedCheck(path: string | undefined): Promise<((user: string) => boolean) | undefined> {
  if (!path) return undefined;
  try {
    const list = await loadProtectedUsers(path);
    return (user) => isProtected(list, user);
  } catch (error) {
    throw ApplicationFailure.create({
      message: `the protected-accounts list ${path} cannot be used (${error instanceof Error ? error.message : String(error)}); nothing was reset`,
      type: 'ProtectedListUnreadable',
      nonRetryable: true,
    });
  }
}

/**
 * A reset that must not be sent (or whose password could not be kept): a permanent failure of that user,
 * shaped like a Graph one so the workflow stops at once. The message never holds a password.
 */
function passwordFailure(message: string, code: string, requestId?: string): ApplicationFailure {
  const details: GraphFailureDetails = { graphCode: code, requestId, ambiguous: false, kind: 'permanent' };
  return ApplicationFailure.create({ message, type: code, nonRetryable: true, details: [details] });
}

/** Describes in flight at once when the job asks which inherited users' workflows have ended. */
const DESCRIBE_BATCH = 20;
/** Temporal's statuses of a workflow that has ended, as the report words them; an open one has none. */
const ENDED_STATUSES: Partial<Record<WorkflowExecutionStatusName, string>> = {
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  TERMINATED: 'terminated',
  TIMED_OUT: 'timed out',
};

/**
 * The outcome a user's workflow that has ended returned (completed) or failed with (a failed user, see
 * USER_FAILED_TYPE); none for a workflow ended otherwise, or whose result is not a sealed outcome.
 */
async function endedWithOutcome(handle: WorkflowHandle, status: string): Promise<ResetOutcome | undefined> {
  if (status !== 'completed' && status !== 'failed') return undefined;
  try {
    const result: unknown = await handle.result();
    return isResetOutcome(result) ? result : undefined;
  } catch (error) {
    return outcomeOfFailedUser(error);
  }
}

/** An Entra object id (a GUID): what confirmCompromised's userIds must hold. */
const OBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** User lookups in flight at once while a containment batch resolves its users' object ids. */
const RESOLVE_CONCURRENCY = 10;

/**
 * The failure of a confirmCompromised request, as the job's batch needs it: a refusal for the whole tenant
 * (CONTAINMENT_REFUSED, not retried), a 429 with the jittered wait Identity Protection does not name, or
 * what toActivityFailure makes of anything else.
 */
function containmentFailure(error: unknown, attempt: number): unknown {
  if (!(error instanceof GraphError)) return error;
  const requestId = error.requestId ? `, request-id ${error.requestId}` : '';
  const details = failureDetailsOf(error, { attempt });
  if (error.tenantWide) {
    return ApplicationFailure.create({
      message: `${error.message}${requestId}; no user of this job is confirmed compromised: give the app IdentityRiskyUser.ReadWrite.All and the operator the Security Administrator role, in a tenant with Entra ID P2, then confirm the succeeded users by hand or with a retry`,
      type: CONTAINMENT_REFUSED,
      nonRetryable: true,
      details: [details],
    });
  }
  if (error.kind === 'permanent') {
    return ApplicationFailure.create({
      message: `confirmCompromised: ${error.message}${requestId}`,
      type: 'GraphPermanentError',
      nonRetryable: true,
      details: [details],
    });
  }
  // Identity Protection's 429s name no wait: back off exponentially, with jitter, never under its 1 s pace.
  const waitMs =
    error.retryAfterMs !== undefined
      ? Math.max(error.retryAfterMs, CONFIRM_SPACING_MS)
      : jitteredBackoffMs(attempt, CONFIRM_BACKOFF, Math.random());
  return ApplicationFailure.create({
    message: `confirmCompromised: ${error.message}${requestId}; trying again in ${Math.round(waitMs / 100) / 10} s`,
    type: error.kind === 'auth' ? 'GraphAuthError' : 'GraphTransientError',
    nextRetryDelay: waitMs,
    details: [details],
    category: ApplicationFailureCategory.BENIGN,
  });
}

/** How long a worker keeps a CSV's passwords in memory after their last use (password mode `csv`). */
const CSV_PASSWORDS_IDLE_MS = 5 * 60_000;

export function createActivities({
  graph,
  dataDir,
  protectedUsersPath,
  userKeySecret,
  webUi,
}: ActivityDependencies) {
  // Every write for a user goes through this check first, whatever the CSV, the plan or the preparation said.
  const writeTarget = createWriteGuard({ graph, protectedUsersPath });
  // Password mode `csv`: the CSV is read (and its SHA-256 checked) once, not for every user's POST.
  let csvPasswords: { key: string; passwords: Promise<Map<number, string>>; usedAt: number } | undefined;
  const csvPasswordOf = async (csv: CsvReference | undefined, row: number | undefined): Promise<string> => {
    if (!csv || row === undefined) throw new Error('password mode csv needs the CSV and the row');
    const key = `${csv.sha256}:${csv.path}`;
    if (
      !csvPasswords ||
      csvPasswords.key !== key ||
      Date.now() - csvPasswords.usedAt > CSV_PASSWORDS_IDLE_MS
    ) {
      csvPasswords = { key, passwords: readCsvPasswords(csv.path, csv.sha256), usedAt: Date.now() };
    }
    const current = csvPasswords;
    current.usedAt = Date.now();
    let passwords: Map<number, string>;
    try {
      passwords = await current.passwords;
    } catch (error) {
      if (csvPasswords === current) csvPasswords = undefined;
      throw passwordFailure(
        `row ${row}: the password cannot be read from the CSV: ${error instanceof Error ? error.message : String(error)}`,
        error instanceof CsvInputError ? 'CsvPasswordUnavailable' : 'CsvUnreadable',
      );
    }
    const password = passwords.get(row);
    if (password === undefined) {
      throw passwordFailure(
        `row ${row} has no newPassword in the CSV; nothing was sent`,
        'CsvPasswordMissing',
      );
    }
    return password;
  };

  /**
   * One password write for a user (resetPassword or a passwordProfile PATCH): journal the intent right
   * before it leaves, send it to the object id the protected check read, keep the password in the secrets
   * file once Graph took it, and turn every failure into the one the user's workflow acts on.
   */
  const sendPasswordWrite = async (
    { jobId, user, row, attempt, password, csv }: StartResetInput,
    write: (
      target: string,
      password: string | undefined,
      request: { abortSignal: AbortSignal; beforeSend?: () => Promise<void> },
    ) => Promise<{ accepted: Omit<StartResetResult, 'previousAttemptUnsent'>; kept?: string }>,
  ): Promise<StartResetResult> => {
    const mode = password?.mode ?? 'graph';
    let secrets: SecretsWriter | undefined;
    const journal = sendJournalPath(jobPaths(dataDir, jobId).dir);
    // After a request that got no answer, the journal tells whether it ever left a worker.
    const previousAttemptUnsent =
      row !== undefined && attempt !== undefined && attempt > 1
        ? !(await sendWasIntended(journal, row, attempt - 1)) || undefined
        : undefined;
    try {
      // Checked before sending, so a missing or unsafe file stops the user before the reset, not after.
      if (password?.secretsFile) secrets = await openSecretsWriter(password.secretsFile, jobId);
      const abortSignal = Context.current().cancellationSignal;
      const target = await writeTarget(user, { abortSignal });
      const newPassword =
        mode === 'generated'
          ? generatePassword(password?.length ?? DEFAULT_GENERATED_PASSWORD_LENGTH)
          : mode === 'csv'
            ? await csvPasswordOf(csv, row)
            : undefined;
      const { accepted, kept } = await write(target, newPassword, {
        abortSignal,
        // Durably, right before the request leaves: what is not in the journal was never sent.
        beforeSend:
          row !== undefined && attempt !== undefined
            ? () => recordSendIntent(journal, row, attempt)
            : undefined,
      });
      if (secrets && kept !== undefined) {
        try {
          await secrets.append({ row: row ?? 0, user, attempt: attempt ?? 1, password: kept });
        } catch (error) {
          throw passwordFailure(
            `user ${user}: Graph accepted the new password, but it could not be written to the secrets file (${error instanceof Error ? error.message : String(error)}); nobody holds it: recover the user through the helpdesk or a Temporary Access Pass`,
            'SecretsFileWriteFailed',
            accepted.requestId,
          );
        }
      }
      return {
        operationUrl: accepted.operationUrl,
        operationId: accepted.operationId,
        retryAfterMs: accepted.retryAfterMs,
        requestId: accepted.requestId,
        ...(previousAttemptUnsent && { previousAttemptUnsent }),
      };
    } catch (error) {
      if (error instanceof SecretsFileError) {
        throw passwordFailure(`user ${user}: ${error.message}; nothing was sent`, 'SecretsFileUnusable');
      }
      throw toActivityFailure(error, user, { details: { previousAttemptUnsent }, passwordMode: mode });
    } finally {
      await secrets?.close();
    }
  };

  return {
    /**
     * POSTs resetPassword with the job's password mode: none (Graph generates one), a fresh generated one,
     * or the row's CSV password read here. Once Graph accepted it (202) the password goes to the job's
     * secrets file, if it has one, and nowhere else: it is never returned, logged or put in a failure.
     */
    async startReset(input: StartResetInput): Promise<StartResetResult> {
      return sendPasswordWrite(input, async (target, newPassword, request) => {
        const accepted = await graph.startPasswordReset(target, { ...request, newPassword });
        return { accepted, kept: newPassword ?? accepted.generatedPassword };
      });
    },

    /**
     * PATCHes the user's passwordProfile (`--method password-profile`) with a password the worker generated
     * or read from the CSV, and the force-change flags. The same journal, protected check, secrets file and
     * failure handling as startReset; Graph answers 204 at once, so there is no operation to hand back.
     */
    async setPasswordProfile(input: SetPasswordProfileInput): Promise<StartResetResult> {
      return sendPasswordWrite(input, async (target, password, request) => {
        if (password === undefined) {
          // Graph does not generate a password for this call: a job in mode `graph` has nothing to send.
          throw passwordFailure(
            `user ${input.user}: --method password-profile needs a password from the worker (--password generated or csv), and this job has none; nothing was sent`,
            'PasswordRequired',
          );
        }
        const { requestId } = await graph.updatePasswordProfile(target, {
          ...request,
          password,
          forceChange: input.forceChange,
          forceChangeWithMfa: input.forceChangeWithMfa,
        });
        return { accepted: { requestId }, kept: password };
      });
    },

    /**
     * When the user's password last changed (`lastPasswordChangeDateTime`): read before the first
     * resetPassword and again after one that got no answer, to tell whether that one landed.
     */
    async readPasswordChange({ user }: ReadPasswordChangeInput): Promise<ReadPasswordChangeResult> {
      try {
        const found = await graph.getUser(user, { abortSignal: Context.current().cancellationSignal });
        return { lastPasswordChangeDateTime: found.lastPasswordChangeDateTime };
      } catch (error) {
        throw toActivityFailure(error, user);
      }
    },

    /** GETs the operation at the Location Graph gave. */
    async pollOperation({ user, operationUrl }: PollOperationInput): Promise<PollOperationResult> {
      const { info, cancellationSignal } = Context.current();
      try {
        const state = await graph.getOperation(operationUrl, { abortSignal: cancellationSignal });
        return {
          status: state.status,
          statusDetail: state.statusDetail,
          retryAfterMs: state.retryAfterMs,
          requestId: state.requestId,
          attempts: info.attempt,
        };
      } catch (error) {
        throw toActivityFailure(error, user, { details: { attempt: info.attempt } });
      }
    },

    /**
     * Claims the job's folder for this run, then checks the CSV against its checksum and splits it into
     * runnable and skipped rows. The claim comes first: a job id is used once, and a second job under it
     * must not take over the first one's prepared rows, ledger or secrets file.
     */
    async prepareJob({
      jobId,
      csv,
      plan,
      password,
      secretsRecipient,
    }: PrepareJobInput): Promise<PreparedJob> {
      const run = Context.current().info.workflowExecution;
      if (!run) throw new Error('prepareJob runs only in a job workflow, which names the job folder owner');
      let claim: JobClaim;
      try {
        claim = await claimJobFolder(jobPaths(dataDir, jobId), jobId, {
          workflowId: run.workflowId,
          runId: run.runId,
        });
      } catch (error) {
        throw jobFolderFailure(error);
      }
      await createSendJournal(sendJournalPath(claim.paths.dir));
      let actual: string;
      try {
        actual = await sha256File(csv.path);
      } catch (error) {
        throw ApplicationFailure.create({
          message: `the CSV ${csv.path} cannot be read by the worker (${(error as NodeJS.ErrnoException).code ?? 'error'}); it must be on a path every worker can read`,
          type: 'CsvUnreadable',
          nonRetryable: true,
        });
      }
      if (actual !== csv.sha256) {
        throw ApplicationFailure.create({
          message: `the CSV ${csv.path} changed after the job was started (its SHA-256 is now ${actual.slice(0, 12)}…, expected ${csv.sha256.slice(0, 12)}…); nothing was reset: start a new job with the file as it is now`,
          type: 'CsvChanged',
          nonRetryable: true,
        });
      }
      const planned = plan ? await readPlan(plan, csv.sha256) : undefined;
      const isProtected = await protectedCheck(protectedUsersPath);
      if (password?.secretsFile) {
        try {
          await createSecretsFile(password.secretsFile, jobId, secretsRecipient);
        } catch (error) {
          if (!(error instanceof SecretsFileError)) throw error;
          throw ApplicationFailure.create({
            message: error.message,
            type: 'SecretsFileUnusable',
            nonRetryable: true,
          });
        }
      }
      try {
        return await prepareJobFiles(claim, csv.path, {
          isProtected,
          planned,
          passwordColumn: password?.mode === 'csv' ? 'require' : 'refuse',
          userKeySecret,
        });
      } catch (error) {
        if (error instanceof CsvInputError) {
          throw ApplicationFailure.create({ message: error.message, type: 'CsvInvalid', nonRetryable: true });
        }
        if (error instanceof PlanMismatchError) {
          throw ApplicationFailure.create({
            message: error.message,
            type: 'PlanMismatch',
            nonRetryable: true,
          });
        }
        throw error;
      }
    },

    /** A page of runnable rows, from where the previous page ended. */
    async readRows({ jobId, byteOffset, limit, rowsSha256 }: ReadRowsInput): Promise<ReadRowsResult> {
      const { rows } = await ownedJobPaths(dataDir, jobId);
      // What was prepared (and approved) is what runs: a rows file changed since then stops the job.
      if (rowsSha256 !== undefined) {
        try {
          await checkRowsUnchanged(rows, rowsSha256);
        } catch (error) {
          if (!(error instanceof RowsChangedError)) throw error;
          throw ApplicationFailure.create({
            message: error.message,
            type: 'RowsChanged',
            nonRetryable: true,
          });
        }
      }
      return readRowsPage(rows, byteOffset, limit);
    },

    /** Appends outcomes to the job's ledger (a retried append is deduplicated when the report is read). */
    async recordOutcomes({ jobId, outcomes }: RecordOutcomesInput): Promise<void> {
      await appendOutcomes((await ownedJobPaths(dataDir, jobId)).ledger, outcomes);
    },

    /**
     * Which of these users' workflows have ended, as Temporal sees them, and the outcome each ended with.
     * The job asks about users it learns of only by signal (inherited from an earlier run, or started in
     * batches): a user whose report never reached it still gets the outcome its workflow returned.
     */
    async endedUserWorkflows({ workflowIds }: EndedUserWorkflowsInput): Promise<EndedUserWorkflow[]> {
      const { client } = Context.current();
      const ended: EndedUserWorkflow[] = [];
      for (let start = 0; start < workflowIds.length; start += DESCRIBE_BATCH) {
        const answers = await Promise.all(
          workflowIds.slice(start, start + DESCRIBE_BATCH).map(async (workflowId) => {
            const handle = client.workflow.getHandle(workflowId);
            try {
              const status = ENDED_STATUSES[(await handle.describe()).status.name];
              if (!status) return undefined;
              return { workflowId, status, outcome: await endedWithOutcome(handle, status) };
            } catch (error) {
              if (error instanceof WorkflowNotFoundError) return { workflowId, status: 'not found' };
              throw error;
            }
          }),
        );
        for (const answer of answers) if (answer) ended.push(answer);
      }
      return ended;
    },

    /**
     * Starts a batch of a job's users (jobs with `userStarts: 'batched'`): each its own resetUser workflow,
     * not a child of the job, with no search attribute (the id says which job it belongs to), reporting to
     * the job by signal. A user's id is never reused (REJECT_DUPLICATE), so a retry of this activity cannot
     * start anyone twice: an id already taken was started by an earlier attempt, and is in flight (or has
     * already reported) like the others.
     */
    async startUsers({ taskQueue, users }: StartUsersInput): Promise<StartUsersResult> {
      const { client } = Context.current();
      const result: StartUsersResult = { started: 0, alreadyStarted: 0 };
      for (let start = 0; start < users.length; start += DESCRIBE_BATCH) {
        await Promise.all(
          users.slice(start, start + DESCRIBE_BATCH).map(async ({ workflowId, input, staticSummary }) => {
            try {
              await client.workflow.start('resetUser', {
                workflowId,
                taskQueue,
                args: [input],
                workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
                staticSummary,
              });
              result.started += 1;
            } catch (error) {
              if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
              result.alreadyStarted += 1;
            }
          }),
        );
      }
      return result;
    },

    /** Records the rows of a cancelled job that were never started; returns how many. */
    async cancelRows({ jobId, pendingRows, byteOffset, reason }: CancelRowsInput): Promise<number> {
      const paths = await ownedJobPaths(dataDir, jobId);
      const cancelled = (rows: { row: number; user: string }[]): ResetOutcome[] =>
        rows.map(({ row, user }) => ({ row, user, status: 'cancelled', reason, polls: 0, startAttempts: 0 }));
      let count = pendingRows.length;
      await appendOutcomes(paths.ledger, cancelled(pendingRows));
      for (let offset = byteOffset; offset !== undefined;) {
        const page = await readRowsPage(paths.rows, offset, 1_000);
        await appendOutcomes(paths.ledger, cancelled(page.rows));
        count += page.rows.length;
        offset = page.exhausted ? undefined : page.nextByteOffset;
      }
      return count;
    },

    /** Ends the user's sign-in sessions after a confirmed reset (revokeSignInSessions). */
    async revokeSessions({ user }: RevokeSessionsInput): Promise<void> {
      try {
        const abortSignal = Context.current().cancellationSignal;
        await graph.revokeSignInSessions(await writeTarget(user, { abortSignal }), { abortSignal });
      } catch (error) {
        throw toActivityFailure(error, user, { retrySignIn: true });
      }
    },

    /**
     * Confirms one batch of users compromised in Identity Protection (one confirmCompromised request).
     * Each user is first resolved to Graph's object id through the write guard, so a user on the protected
     * list now is left out (and told why) even though its reset went through earlier. A user Graph cannot
     * find is left out too; passing trouble fails the batch, which Temporal tries again.
     */
    async confirmCompromised({ users }: ConfirmCompromisedInput): Promise<ConfirmCompromisedResult> {
      const { info, cancellationSignal: abortSignal } = Context.current();
      const notConfirmed: ConfirmCompromisedResult['notConfirmed'] = [];
      const resolved: { row: number; id: string }[] = [];
      try {
        for (let start = 0; start < users.length; start += RESOLVE_CONCURRENCY) {
          await Promise.all(
            users.slice(start, start + RESOLVE_CONCURRENCY).map(async ({ row, user }) => {
              try {
                const target = await writeTarget(user, { abortSignal });
                const id = OBJECT_ID.test(target)
                  ? target
                  : (await graph.getUser(target, { abortSignal })).id;
                if (!OBJECT_ID.test(id)) {
                  notConfirmed.push({ row, reason: `Graph gave no object id for ${user}; not confirmed` });
                } else resolved.push({ row, id });
              } catch (error) {
                const protectedUser = error instanceof ApplicationFailure && error.type === PROTECTED_ACCOUNT;
                if (!protectedUser && !(error instanceof GraphError && error.kind === 'permanent'))
                  throw error;
                notConfirmed.push({ row, reason: `${(error as Error).message}; not confirmed compromised` });
              }
            }),
          );
        }
        if (resolved.length === 0) return { confirmed: [], notConfirmed };
        const ids = [...new Set(resolved.map(({ id }) => id))];
        const { requestId } = await graph.confirmCompromised(ids, { abortSignal });
        return { confirmed: resolved.map(({ row }) => row), notConfirmed, requestId };
      } catch (error) {
        throw containmentFailure(error, info.attempt);
      }
    },

    /**
     * Writes the CSV and JSON report from the ledger: each row with its user's workflow id (and Web UI link),
     * a hint in the job's password mode, and for a retry the original job's row numbers.
     */
    async writeReport({ jobId, csv, startedAt, record }: WriteReportInput): Promise<ReportedJobSummary> {
      const paths = await ownedJobPaths(dataDir, jobId);
      const finishedAt = new Date().toISOString();
      const keys = await preparedRowKeys(paths);
      // No password settings means Graph generated the passwords; no settings at all, the mode is unknown.
      const mode = record?.settings && (record.settings.policy.password?.mode ?? 'graph');
      const originalRows = record?.retryOf ? await originalRowsOf(dataDir, record.retryOf) : undefined;
      const context: ReportRowContext = {
        workflowIdOf: (outcome) => {
          const key = keys.get(outcome.row);
          // Rows recorded without their user's workflow running (skipped, cancelled before it started) have none.
          const started =
            outcome.startedAt !== undefined ||
            ['succeeded', 'failed', 'unconfirmed'].includes(outcome.status);
          return key && started
            ? userWorkflowId(jobId, {
                row: outcome.row,
                user: outcome.user,
                idKind: 'userPrincipalName',
                key,
              })
            : undefined;
        },
        webUi,
        hintFor: (outcome) => reportHintFor(outcome, mode),
        knownHints: ALL_ADVICE,
        originalRowOf: originalRows && ((outcome) => originalRows.get(outcome.user.toLowerCase())),
      };
      const summary = await writeReport(
        paths.ledger,
        { csvPath: paths.reportCsv, jsonPath: paths.reportJson },
        { jobId, csvPath: csv.path, csvSha256: csv.sha256, startedAt, finishedAt, ...record },
        context,
      );
      return {
        jobId,
        total: summary.total,
        counts: summary.counts,
        reportCsvPath: summary.csvPath,
        reportJsonPath: summary.jsonPath,
        startedAt,
        finishedAt,
        ...(record?.containment && { containment: record.containment }),
        // Beyond JobSummary: the job's result carries it to `start --wait`, `watch` and `status`.
        failuresByCause: summary.failuresByCause,
      } satisfies ReportedJobSummary;
    },
  };
}

/**
 * A retry's users by their row in the original job's report, which already carries the first job's row
 * numbers when the original was itself a retry. A user is in a job once (duplicates are skipped), so the
 * user names the row. Undefined when the original's report cannot be read: the retry keeps its own rows.
 */
async function originalRowsOf(
  dataDir: string,
  originalJobId: string,
): Promise<Map<string, number> | undefined> {
  let report: ReportJson;
  try {
    report = JSON.parse(await readFile(jobPaths(dataDir, originalJobId).reportJson, 'utf8')) as ReportJson;
  } catch {
    return undefined;
  }
  const rows = new Map<string, number>();
  for (const outcome of report.outcomes) {
    if (outcome.user !== '' && !rows.has(outcome.user.toLowerCase()))
      rows.set(outcome.user.toLowerCase(), outcome.row);
  }
  return rows;
}

export type Activities = ReturnType<typeof createActivities>;
