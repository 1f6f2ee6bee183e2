/**
 * The Graph endpoints the simulator answers, by method and path: resetPassword and its operation's polls
 * (see resets.ts), the user lookup and its directory roles, and revokeSignInSessions. Each route
 * attributes its request to a user, counts it, lets the outage and random faults have their say, then
 * answers as the user's scenario scripts it and as Graph does where the scenario says nothing.
 */
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import {
  type Answer,
  GRAPH_CONTEXT,
  type RequestContext,
  badRequestAnswer,
  notFoundRouteAnswer,
  notFoundUserAnswer,
  throttledAnswer,
} from './answers';
import { readFault } from './faults';
import { pollOperation, resetPassword, updatePasswordProfile } from './resets';
import { confirmCompromised } from './identityProtection';
import { type Simulation, type UserState, fakeObjectId } from './state';

// ---------------------------------------------------------------------------------------------------------
// Graph facts the routes reproduce

/** The directory role an `admin.` user holds (its template id is the same in every tenant). */
const GLOBAL_ADMINISTRATOR = {
  displayName: 'Global Administrator',
  roleTemplateId: '62e90394-69f5-4237-9190-012177145e10',
};

/** Graph's default property set of `GET /users/{id}` (v1.0); anything else only on `$select`. */
const DEFAULT_USER_PROPERTIES = [
  'businessPhones',
  'displayName',
  'givenName',
  'id',
  'jobTitle',
  'mail',
  'mobilePhone',
  'officeLocation',
  'preferredLanguage',
  'surname',
  'userPrincipalName',
] as const;

// ---------------------------------------------------------------------------------------------------------
// Dispatch

/** Answers a Graph request (authorised, token not revoked) by its method and percent-decoded path. */
export async function graphRoute(
  sim: Simulation,
  ctx: RequestContext,
  req: IncomingMessage,
  url: URL,
  segments: string[],
): Promise<Answer> {
  const literal = (index: number, expected: string): boolean =>
    segments[index]?.toLowerCase() === expected.toLowerCase();
  if (
    segments.length === 4 &&
    req.method === 'POST' &&
    literal(0, 'v1.0') &&
    literal(1, 'identityProtection') &&
    literal(2, 'riskyUsers') &&
    literal(3, 'confirmCompromised')
  ) {
    return confirmCompromised(sim, req);
  }
  if (!literal(0, 'v1.0') || !literal(1, 'users') || segments.length < 3 || segments[2] === '') {
    return notFoundRouteAnswer(url);
  }
  const user = segments[2];
  const method = req.method ?? '';
  if (segments.length === 3 && method === 'GET') return getUser(sim, ctx, url, user);
  if (segments.length === 3 && method === 'PATCH') return updatePasswordProfile(sim, ctx, req, user);
  if (
    segments.length === 5 &&
    method === 'GET' &&
    literal(3, 'transitiveMemberOf') &&
    literal(4, 'microsoft.graph.directoryRole')
  ) {
    return getDirectoryRoles(sim, ctx, url, user);
  }
  if (segments.length === 4 && method === 'POST' && literal(3, 'revokeSignInSessions')) {
    return revokeSignInSessions(sim, ctx, user);
  }
  if (
    segments.length === 7 &&
    method === 'POST' &&
    literal(3, 'authentication') &&
    literal(4, 'methods') &&
    literal(6, 'resetPassword')
  ) {
    return resetPassword(sim, ctx, req, user, segments[5]);
  }
  if (segments.length === 6 && method === 'GET' && literal(3, 'authentication') && literal(4, 'operations')) {
    return pollOperation(sim, ctx, url, user, segments[5]);
  }
  return notFoundRouteAnswer(url);
}

// ---------------------------------------------------------------------------------------------------------
// revokeSignInSessions

function revokeSignInSessions(sim: Simulation, ctx: RequestContext, segment: string): Answer {
  const user = sim.state.touchUser(ctx, segment);
  user.counters.revokes++;
  const fault = readFault(sim, user, 'revoke');
  if (fault) return fault;
  if (user.scenario === 'missing') return notFoundUserAnswer(segment);
  return { status: 200, body: { '@odata.context': `${GRAPH_CONTEXT}#Edm.Boolean`, value: true } };
}

// ---------------------------------------------------------------------------------------------------------
// User lookups (a preflight's reads)

/** Counts a user lookup; answers 429 when the read budget is spent, else undefined. */
function lookUp(sim: Simulation, user: UserState): Answer | undefined {
  const { state } = sim;
  user.counters.gets++;
  const fault = readFault(sim, user, 'get');
  if (fault) return fault;
  state.settle(user);
  const waitSeconds = state.readBudget?.take(performance.now()) ?? 0;
  return waitSeconds > 0 ? throttledAnswer(state, waitSeconds) : undefined;
}

/** `GET /users/{id}`: Graph's default properties, or exactly those `$select` names. */
function getUser(sim: Simulation, ctx: RequestContext, url: URL, segment: string): Answer {
  const user = sim.state.touchUser(ctx, segment);
  const throttled = lookUp(sim, user);
  if (throttled) return throttled;
  if (user.scenario === 'missing') return notFoundUserAnswer(segment);
  const properties = userProperties(user);
  const select = url.searchParams.get('$select');
  if (select === null) {
    const fields = DEFAULT_USER_PROPERTIES.map((name) => [name, properties[name]]);
    return {
      status: 200,
      body: { '@odata.context': `${GRAPH_CONTEXT}#users/$entity`, ...Object.fromEntries(fields) },
    };
  }
  const chosen: string[] = [];
  for (const wanted of select
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean)) {
    const name = Object.keys(properties).find((known) => known.toLowerCase() === wanted.toLowerCase());
    if (name === undefined) {
      return badRequestAnswer(
        `$select names '${wanted}', which is not a property of type 'microsoft.graph.user'.`,
      );
    }
    if (!chosen.includes(name)) chosen.push(name);
  }
  return {
    status: 200,
    body: {
      '@odata.context': `${GRAPH_CONTEXT}#users(${chosen.join(',')})/$entity`,
      ...Object.fromEntries(chosen.map((name) => [name, properties[name]])),
    },
  };
}

/** Every property the simulator knows of a user, whether Graph returns it by default or not. */
function userProperties(user: UserState): Record<string, unknown> {
  const userPrincipalName = user.name.includes('@') ? user.name : `${user.name}@contoso.test`;
  return {
    id: user.id,
    userPrincipalName,
    displayName: userPrincipalName.split('@')[0],
    mail: userPrincipalName,
    businessPhones: [],
    givenName: null,
    surname: null,
    jobTitle: null,
    mobilePhone: null,
    officeLocation: null,
    preferredLanguage: null,
    accountEnabled: user.scenario !== 'disabled',
    onPremisesSyncEnabled: user.scenario === 'synced' ? true : null,
    lastPasswordChangeDateTime: user.lastPasswordChangeDateTime,
  };
}

/** `GET /users/{id}/transitiveMemberOf/microsoft.graph.directoryRole`: the user's active directory roles. */
function getDirectoryRoles(sim: Simulation, ctx: RequestContext, url: URL, segment: string): Answer {
  const user = sim.state.touchUser(ctx, segment);
  const throttled = lookUp(sim, user);
  if (throttled) return throttled;
  if (user.scenario === 'missing') return notFoundUserAnswer(segment);
  const roles =
    user.scenario === 'admin'
      ? [{ id: fakeObjectId(`role:${GLOBAL_ADMINISTRATOR.roleTemplateId}`), ...GLOBAL_ADMINISTRATOR }]
      : [];
  const select = url.searchParams
    .get('$select')
    ?.split(',')
    .map((field) => field.trim());
  const value = roles.map((role) =>
    select
      ? Object.fromEntries(Object.entries(role).filter(([field]) => select.includes(field)))
      : { '@odata.type': '#microsoft.graph.directoryRole', ...role },
  );
  return {
    status: 200,
    body: {
      '@odata.context': `${GRAPH_CONTEXT}#directoryRoles`,
      ...(url.searchParams.get('$count') === 'true' && { '@odata.count': value.length }),
      value,
    },
  };
}
