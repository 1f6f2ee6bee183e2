/**
 * The one place where the protected-accounts guarantee is enforced: right before every write bulk-reset
 * sends for a user (the reset, a resend, revoking sessions), in the worker that sends it.
 *
 * The CSV's text is not trusted to name the account the way the list does: a break-glass account listed
 * by object id can be named in the CSV by userPrincipalName, or the reverse. So the worker asks Graph who
 * the user is (`GET /users/{user}`: its object id and userPrincipalName), matches both against the list,
 * read afresh whenever the file changes, and then sends the write to the object id Graph returned, so the
 * account written to is the account that was checked. The CLI's, the plan's and the preparation's checks
 * of the same list are conveniences for the operator; this one is the guarantee.
 */
import { stat } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { GraphClient } from './client';
import { GraphError } from './errors';
import { type ProtectedUsers, isProtected, loadProtectedUsers } from '../jobs/protectedUsers';
import { type GraphFailureDetails, PROTECTED_ACCOUNT } from '../workflows/types';

export interface WriteGuardOptions {
  graph: GraphClient;
  /** The protected-accounts list (BULK_RESET_PROTECTED_USERS); without one, nothing is protected. */
  protectedUsersPath?: string;
}

/**
 * Resolves `user` (as the CSV names it) to the path segment a write for it must use, after checking that
 * Graph's identity of that user is not protected. Throws a non-retryable `ProtectedAccount` failure for a
 * protected user, a GraphError (never ambiguous: nothing was written) when Graph cannot tell who it is,
 * and a retryable failure when the list cannot be read. Without a list, the user as given.
 */
export type WriteGuard = (user: string, options?: { abortSignal?: AbortSignal }) => Promise<string>;

export function createWriteGuard({ graph, protectedUsersPath }: WriteGuardOptions): WriteGuard {
  if (!protectedUsersPath) return (user) => Promise.resolve(user);
  const currentList = protectedListReader(protectedUsersPath);
  return async (user, { abortSignal } = {}) => {
    const list = await currentList();
    let identity: { id: string; userPrincipalName?: string };
    try {
      identity = await graph.getUser(user, { abortSignal });
    } catch (error) {
      if (!(error instanceof GraphError)) throw error;
      // A read applies nothing: whatever happened to it, the write was not sent.
      throw new GraphError(
        `reading the user before the write, to check it against the protected list: ${error.message}`,
        {
          kind: error.kind,
          status: error.status,
          code: error.code,
          requestId: error.requestId,
          retryAfterMs: error.retryAfterMs,
          ambiguous: false,
          cause: error,
        },
      );
    }
    if (identity.id === '') {
      throw new GraphError('Graph returned the user without an object id, so it cannot be checked', {
        kind: 'permanent',
        code: 'NoObjectId',
      });
    }
    if (isProtected(list, user) || isProtected(list, identity)) {
      const details: GraphFailureDetails = {
        graphCode: PROTECTED_ACCOUNT,
        ambiguous: false,
        kind: 'permanent',
      };
      throw ApplicationFailure.create({
        message:
          `protected: Graph's identity of this user (object id ${identity.id}, userPrincipalName ` +
          `${identity.userPrincipalName ?? 'unknown'}) is on the protected list ${list.path}; nothing was sent`,
        type: PROTECTED_ACCOUNT,
        nonRetryable: true,
        details: [details],
      });
    }
    return identity.id;
  };
}

/**
 * The list, read again whenever the file changes (its inode, size or modification time): an entry added
 * during a job protects that user from the next write on. A list that cannot be read stops the write: a
 * retryable failure, since a file that comes back lets the job go on.
 */
function protectedListReader(path: string): () => Promise<ProtectedUsers> {
  let cached: { version: string; list: ProtectedUsers } | undefined;
  return async () => {
    try {
      const info = await stat(path);
      const version = `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
      if (cached?.version !== version) cached = { version, list: await loadProtectedUsers(path) };
      return cached.list;
    } catch (error) {
      cached = undefined;
      throw ApplicationFailure.create({
        message: `the protected-accounts list cannot be used (${error instanceof Error ? error.message : String(error)}); the write was not sent`,
        type: 'ProtectedListUnreadable',
      });
    }
  };
}
