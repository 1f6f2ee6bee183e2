/**
 * What a Graph access token says about its caller, read from its claims: whether it is app-only, and the
 * permissions it carries (`scp` for delegated tokens, `roles` for app-only ones). The signature is not
 * checked here (Graph checks it); these claims only decide what bulk-reset refuses to send or warns about.
 */

export interface TokenFacts {
  /** `app` for an app-only token, `user` for a delegated one; undefined when the token is not a readable JWT. */
  identity?: 'app' | 'user';
  /** Delegated permissions (`scp`) or application permissions (`roles`), as the token lists them. */
  permissions: string[];
}

/** The claims of a JWT's payload, or undefined when the token is opaque. */
function payloadOf(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An app-only token has no `scp` (and Entra's v2 tokens say `idtyp: app`); a delegated one has `scp`.
 * An opaque token tells nothing.
 */
export function tokenFacts(token: string): TokenFacts {
  const claims = payloadOf(token);
  if (!claims) return { permissions: [] };
  const scp = typeof claims.scp === 'string' ? claims.scp.split(' ').filter(Boolean) : undefined;
  const roles = Array.isArray(claims.roles)
    ? claims.roles.filter((role): role is string => typeof role === 'string')
    : [];
  const identity = claims.idtyp === 'app' || (scp === undefined && roles.length > 0) ? 'app' : 'user';
  return { identity, permissions: identity === 'app' ? roles : (scp ?? []) };
}

/**
 * An unsigned JWT with these claims, for the Graph simulator and tests: bulk-reset reads its claims as it
 * reads Graph's tokens, and the simulator decides by them what an app-only caller may do.
 */
export function unsignedToken(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.unsigned`;
}
