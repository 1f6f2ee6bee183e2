/**
 * resetPassword and the long-running operation it returns: the body's checks, the scenario's answer to
 * each POST, the accepted reset's operation and its polls. The password changes when the operation's
 * time comes (see SimulatorState.settle), whether anyone polls it or not, as in Graph.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { PASSWORD_METHOD_ID } from '../graph/client';
import { MAX_PASSWORD_LENGTH, generatePassword } from '../secrets/passwords';
import { PASSWORD_PROFILE_PERMISSION } from '../graph/client';
import { DEFAULT_GENERATED_PASSWORD_LENGTH } from '../workflows/types';
import {
  type Answer,
  DROPPED,
  GRAPH_CONTEXT,
  type RequestContext,
  accessDeniedAnswer,
  appOnlyRefusedAnswer,
  badRequestAnswer,
  onPremisesMasteredAnswer,
  notFoundUserAnswer,
  operationNotFoundAnswer,
  passwordRejectedAnswer,
  throttledAnswer,
  unavailableAnswer,
} from './answers';
import { injectedFault, nextDraw, readFault } from './faults';
import {
  DEFAULT_SCENARIO_COUNT,
  type Refusal,
  type ScenarioName,
  TERMINAL_OPERATION_STATUSES,
  isFinalStep,
  pollPlanFor,
  postStepFor,
  stepAt,
  timestampStyleFor,
} from './scenarios';
import type { Operation, PasswordProfileWrite, Simulation, UserState } from './state';

/** Graph's own query string on the `Location` of an accepted reset; a poll without it is not found. */
const LOCATION_QUERY = 'aadgdc=SIM01&aadgsu=ssprprod-a';
const MAX_BODY_BYTES = 64 * 1024;

// ---------------------------------------------------------------------------------------------------------
// resetPassword

type BodyResult = { ok: true; text: string } | { ok: false; tooLarge: true };

export async function readBody(req: IncomingMessage): Promise<BodyResult> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return { ok: false, tooLarge: true };
    chunks.push(buffer);
  }
  return { ok: true, text: Buffer.concat(chunks).toString('utf8') };
}

/** The `newPassword` a resetPassword body carries (undefined: Graph generates one), or the 4xx answer. */
async function readNewPassword(
  req: IncomingMessage,
  methodId: string,
): Promise<{ newPassword: string | undefined } | { refused: Answer }> {
  const body = await readBody(req);
  if (methodId.toLowerCase() !== PASSWORD_METHOD_ID) {
    return { refused: badRequestAnswer('The method is not supported for this URL.', 'badRequest') };
  }
  if (!body.ok) {
    return {
      refused: {
        status: 413,
        error: { code: 'RequestEntityTooLarge', message: 'The request body is too large.' },
      },
    };
  }
  let parsed: unknown = {};
  try {
    if (body.text.trim() !== '') parsed = JSON.parse(body.text);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { refused: badRequestAnswer('Unable to read JSON request payload: expected a JSON object.') };
  }
  const newPassword: unknown = (parsed as Record<string, unknown>).newPassword;
  if (newPassword !== undefined && typeof newPassword !== 'string') {
    return { refused: badRequestAnswer('newPassword must be a string.') };
  }
  return { newPassword };
}

function refusalAnswer(refusal: Refusal, segment: string): Answer {
  switch (refusal) {
    case 'badpw':
      return passwordRejectedAnswer();
    case 'denied':
      return accessDeniedAnswer();
    case 'missing':
      return notFoundUserAnswer(segment);
  }
}

/** `POST /users/{id}/authentication/methods/{methodId}/resetPassword`. */
export async function resetPassword(
  sim: Simulation,
  ctx: RequestContext,
  req: IncomingMessage,
  segment: string,
  methodId: string,
): Promise<Answer> {
  const { state, settings } = sim;
  const user = state.touchUser(ctx, segment);
  state.count(user, 'posts');
  // As Graph: resetPassword takes delegated permissions only.
  if (ctx.appOnly) {
    await readBody(req);
    return appOnlyRefusedAnswer();
  }
  const read = await readNewPassword(req, methodId);
  if ('refused' in read) return read.refused;
  const { newPassword } = read;
  if (newPassword !== undefined) {
    user.counters.passwordSupplied = true;
    user.passwords?.received.push(newPassword);
  }

  const fault = injectedFault(sim, user, 'post');
  // A drop after Graph took the reset is decided now and carried out once the reset is accepted.
  let dropAfterAccept = false;
  if (fault === 'drop') {
    if (nextDraw(sim, user, 'dropside') >= (settings.faults?.dropAfterApply ?? 0.5)) {
      state.countFault('drop');
      return DROPPED;
    }
    dropAfterAccept = true;
  } else if (fault) {
    return fault;
  }

  const waitSeconds = state.writeBudget?.take(performance.now()) ?? 0;
  if (waitSeconds > 0) return throttledAnswer(state, waitSeconds);

  const scenario: ScenarioName = user.scenarioSpent ? 'ok' : user.scenario;
  const step = postStepFor(scenario, user.scenarioPosts++);
  switch (step.kind) {
    case 'refuse':
      user.scenarioSpent = true;
      return refusalAnswer(step.refusal, segment);
    case 'throttle':
      return throttledAnswer(state, settings.retryAfterSeconds);
    case 'unavailable':
      return unavailableAnswer(settings.retryAfterSeconds);
    case 'drop':
      return DROPPED;
    case 'accept':
      if (step.dropAfterAccept) dropAfterAccept = true;
      break;
  }
  const accept = (answer: Answer): Answer => {
    if (!dropAfterAccept) return answer;
    if (fault === 'drop') {
      state.countFault('drop');
      state.countFault('dropAfterApply');
    }
    return DROPPED;
  };

  state.count(user, 'resetsAccepted');
  // Graph generates a password when the caller supplies none; the product's own rules stand in for Entra's.
  const generated =
    newPassword === undefined ? generatePassword(DEFAULT_GENERATED_PASSWORD_LENGTH) : undefined;
  const accepted =
    generated === undefined
      ? {}
      : {
          '@odata.context': `${GRAPH_CONTEXT}#microsoft.graph.passwordResetResponse`,
          newPassword: generated,
        };
  user.passwords?.accepted.push(newPassword ?? (generated as string));

  if (scenario === 'nolocation') {
    // Graph accepted the reset; only its confirmation is missing. The user record shows it landed.
    user.scenarioSpent = true;
    state.applyNow(user);
    return accept({ status: 202, body: accepted, terminal: true });
  }

  let plan = pollPlanFor({ scenario, count: user.scenarioCount });
  // Drawn for every accepted reset, so the draws do not depend on which scenario came before.
  const opFail = settings.faults?.opFail;
  const opFails = opFail ? nextDraw(sim, user, 'op') < opFail : false;
  if (opFails && plan.effect !== 'failed') {
    plan = pollPlanFor({ scenario: 'opfail', count: DEFAULT_SCENARIO_COUNT });
    state.countFault('opFail');
  }
  const now = new Date().toISOString();
  const operation: Operation = {
    id: randomUUID(),
    userKey: user.key,
    plan,
    polls: 0,
    status: 'notStarted',
    statusDetail: null,
    createdDateTime: now,
    lastActionDateTime: now,
    timestamps: timestampStyleFor(scenario),
    runningUntil: performance.now() + settings.operationSeconds * 1000,
    settled: false,
  };
  state.operations.set(operation.id, operation);
  user.unsettled.push(operation);
  // As Graph: the host the caller used, and the user's object id whatever the caller named it by.
  const location = `${ctx.base}/users/${user.id}/authentication/operations/${operation.id}?${LOCATION_QUERY}`;
  return accept({
    status: 202,
    body: accepted,
    headers: { Location: location },
    retryAfterSeconds: scenario === 'noretry' ? undefined : settings.retryAfterSeconds,
  });
}

// ---------------------------------------------------------------------------------------------------------
// PATCH /users/{id} with a passwordProfile

/** The permissions that let a caller write a passwordProfile (the least privileged first). */
const PROFILE_PERMISSIONS = [PASSWORD_PROFILE_PERMISSION, 'Directory.AccessAsUser.All'];

/**
 * Entra ID's complexity rule for a password an administrator sets: 8 to 256 characters, with three of
 * the four kinds (upper case, lower case, digits, symbols). The banned-password list is the `badpw`
 * scenario's to play.
 */
export function meetsPasswordPolicy(password: string): boolean {
  if (password.length < 8 || password.length > MAX_PASSWORD_LENGTH) return false;
  const kinds = [/[A-Z]/, /[a-z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((kind) => kind.test(password)).length;
  return kinds >= 3;
}

type ProfileBody =
  { ok: true; password: string; force?: boolean; forceWithMfa?: boolean } | { ok: false; refused: Answer };

async function readPasswordProfile(req: IncomingMessage): Promise<ProfileBody> {
  const body = await readBody(req);
  if (!body.ok) {
    return {
      ok: false,
      refused: {
        status: 413,
        error: { code: 'RequestEntityTooLarge', message: 'The request body is too large.' },
      },
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.text);
  } catch {
    parsed = undefined;
  }
  const profile =
    typeof parsed === 'object' && parsed !== null
      ? (parsed as Record<string, unknown>).passwordProfile
      : undefined;
  if (typeof profile !== 'object' || profile === null || Array.isArray(profile)) {
    return {
      ok: false,
      refused: badRequestAnswer('The simulator answers PATCH /users/{id} with a passwordProfile only.'),
    };
  }
  const fields = profile as Record<string, unknown>;
  const flag = (name: string): boolean | undefined | 'bad' =>
    fields[name] === undefined ? undefined : typeof fields[name] === 'boolean' ? fields[name] : 'bad';
  const force = flag('forceChangePasswordNextSignIn');
  const forceWithMfa = flag('forceChangePasswordNextSignInWithMfa');
  if (typeof fields.password !== 'string' || force === 'bad' || forceWithMfa === 'bad') {
    return {
      ok: false,
      refused: badRequestAnswer(
        "Invalid value specified for property 'passwordProfile' of resource 'User'.",
        'Request_BadRequest',
      ),
    };
  }
  return { ok: true, password: fields.password, force, forceWithMfa };
}

/**
 * `PATCH /users/{id}` with `passwordProfile`: synchronous, 204 once the password is in place. As Graph: a
 * caller whose token lacks the permission, or whose role may not touch an administrator (an app-only caller
 * holds User Administrator here, which reaches no admin), gets 403; a user synced from on-premises gets 400 (its
 * password is mastered there); a password the policy refuses gets 400. Faults, throttling and the write
 * budget apply as to resetPassword, and the scenario's first answers (throttled, flaky, drop, dropafter).
 */
export async function updatePasswordProfile(
  sim: Simulation,
  ctx: RequestContext,
  req: IncomingMessage,
  segment: string,
): Promise<Answer> {
  const { state, settings } = sim;
  const user = state.touchUser(ctx, segment);
  const read = await readPasswordProfile(req);
  const write: PasswordProfileWrite = {
    ...(read.ok && read.force !== undefined && { forceChangePasswordNextSignIn: read.force }),
    ...(read.ok &&
      read.forceWithMfa !== undefined && { forceChangePasswordNextSignInWithMfa: read.forceWithMfa }),
    appOnly: ctx.appOnly,
    status: 0,
  };
  user.counters.profileWrites.push(write);
  const answer = (result: Answer): Answer => {
    write.status = result.drop ? 0 : result.status;
    return result;
  };
  if (!read.ok) return answer(read.refused);
  user.counters.passwordSupplied = true;
  user.passwords?.received.push(read.password);

  const { caller } = settings;
  if (
    caller.identity !== undefined &&
    !caller.permissions.some((held) => PROFILE_PERMISSIONS.includes(held))
  ) {
    return answer(accessDeniedAnswer());
  }
  const fault = injectedFault(sim, user, 'post');
  let dropAfterAccept = false;
  if (fault === 'drop') {
    if (nextDraw(sim, user, 'dropside') >= (settings.faults?.dropAfterApply ?? 0.5)) {
      state.countFault('drop');
      return answer(DROPPED);
    }
    dropAfterAccept = true;
  } else if (fault) {
    return answer(fault);
  }
  const waitSeconds = state.writeBudget?.take(performance.now()) ?? 0;
  if (waitSeconds > 0) return answer(throttledAnswer(state, waitSeconds));

  const scenario: ScenarioName = user.scenarioSpent ? 'ok' : user.scenario;
  if (scenario === 'missing') return answer(notFoundUserAnswer(segment));
  // An app holds User Administrator here, which reaches no administrator; an operator's token, every role.
  if ((scenario === 'admin' && ctx.appOnly) || scenario === 'denied') return answer(accessDeniedAnswer());
  if (scenario === 'synced') return answer(onPremisesMasteredAnswer());
  if (scenario === 'badpw' || !meetsPasswordPolicy(read.password)) return answer(passwordRejectedAnswer());
  const step = postStepFor(scenario, user.scenarioPosts++);
  switch (step.kind) {
    case 'refuse':
      user.scenarioSpent = true;
      return answer(refusalAnswer(step.refusal, segment));
    case 'throttle':
      return answer(throttledAnswer(state, settings.retryAfterSeconds));
    case 'unavailable':
      return answer(unavailableAnswer(settings.retryAfterSeconds));
    case 'drop':
      return answer(DROPPED);
    case 'accept':
      if (step.dropAfterAccept) dropAfterAccept = true;
      break;
  }
  user.scenarioSpent = true;
  user.passwords?.accepted.push(read.password);
  state.applyNow(user);
  if (dropAfterAccept) {
    if (fault === 'drop') {
      state.countFault('drop');
      state.countFault('dropAfterApply');
    }
    return answer(DROPPED);
  }
  return answer({ status: 204, terminal: true });
}

// ---------------------------------------------------------------------------------------------------------
// Operation polls

/** `GET /users/{id}/authentication/operations/{operationId}`: the reset's operation, as its plan scripts. */
export function pollOperation(
  sim: Simulation,
  ctx: RequestContext,
  url: URL,
  segment: string,
  operationId: string,
): Answer {
  const { state, settings } = sim;
  const user = state.touchUser(ctx, segment);
  state.count(user, 'polls');
  const fault = readFault(sim, user, 'poll');
  if (fault) return fault;
  state.settle(user);
  const operation = state.operations.get(operationId.toLowerCase());
  if (!url.searchParams.has('aadgdc') || !operation || operation.userKey !== user.key) {
    const hint = operation ? ' Follow the Location header verbatim, query string included.' : '';
    return operationNotFoundAnswer(operationId, hint);
  }
  const step = stepAt(operation.plan, operation.polls);
  const final = isFinalStep(operation.plan, operation.polls);
  // Not visible yet, whether Graph has started on it or not: the same 404 as an unknown operation.
  if (step.kind === 'notFound') {
    operation.polls++;
    if (final) user.scenarioSpent = true;
    return {
      ...operationNotFoundAnswer(operationId),
      retryAfterSeconds: step.retryAfter ? settings.retryAfterSeconds : undefined,
      terminal: final,
    };
  }
  if (performance.now() < operation.runningUntil) {
    operation.status = 'running';
    return {
      status: 200,
      body: operationBody(ctx, user, operation),
      retryAfterSeconds: settings.retryAfterSeconds,
    };
  }
  operation.polls++;
  if (step.kind === 'throttle') return throttledAnswer(state, settings.retryAfterSeconds);

  if (operation.status !== step.status) {
    operation.status = step.status;
    operation.statusDetail = step.statusDetail;
    operation.lastActionDateTime = new Date().toISOString();
    // The password changed when the operation's time came (settle), not when it was polled.
    state.markSettled(user, operation);
  }
  const terminal = TERMINAL_OPERATION_STATUSES.has(operation.status) || final;
  if (terminal) user.scenarioSpent = true;
  return {
    status: 200,
    body: operationBody(ctx, user, operation),
    retryAfterSeconds: step.retryAfter ? settings.retryAfterSeconds : undefined,
    terminal,
  };
}

/** As Graph: a succeeded reset says ResetSuccess and names the password method it changed. */
function operationBody(ctx: RequestContext, user: UserState, operation: Operation): Record<string, unknown> {
  return {
    '@odata.context': `${GRAPH_CONTEXT}#microsoft.graph.longRunningOperation`,
    id: operation.id,
    ...operationTimestamps(operation),
    status: operation.status,
    statusDetail: operation.statusDetail,
    resourceLocation:
      operation.status === 'succeeded'
        ? `${ctx.base}/users/${user.id}/authentication/methods/${PASSWORD_METHOD_ID}`
        : null,
  };
}

function operationTimestamps(operation: Operation): Record<string, string> {
  const { createdDateTime, lastActionDateTime } = operation;
  switch (operation.timestamps) {
    case 'missing':
      return { lastActionDateTime };
    case 'malformed':
      return {
        createdDateTime: malformedTimestamp(createdDateTime),
        lastActionDateTime: malformedTimestamp(lastActionDateTime),
      };
    default:
      return { createdDateTime, lastActionDateTime };
  }
}

/** An ISO time written as Microsoft's own example operation writes it: '-' in the time, two decimals. */
function malformedTimestamp(iso: string): string {
  const [date, time] = iso.split('T');
  const [clock, fraction = '00'] = time.replace(/Z$/, '').split('.');
  return `${date}T${clock.replaceAll(':', '-')}.${fraction.padEnd(2, '0').slice(0, 2)}Z`;
}
