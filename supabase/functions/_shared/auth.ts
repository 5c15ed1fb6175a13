/**
 * Caller authentication for the Edge Functions: a signed-in (non-anonymous) Supabase user's JWT.
 *
 * Handlers take a {@link JwtVerifier} as a dependency, so tests inject a stub. The production verifier is
 * supabase-js `auth.getClaims(token)`: it checks asymmetric (JWKS) signatures locally and asks the Auth server
 * (`GET /auth/v1/user`) for legacy HS256 tokens.
 */
import { createClient, isAuthRetryableFetchError } from "@supabase/supabase-js";
import { HttpError } from "./http.ts";

/** The JWT claims the functions look at (Supabase access tokens carry more). */
export interface JwtClaims {
  sub?: string;
  role?: string;
  is_anonymous?: boolean;
  [claim: string]: unknown;
}

/** What a verifier says about a token. `unavailable`: it could not decide (Auth server down, no config). */
export type JwtVerification =
  | { ok: true; claims: JwtClaims }
  | { ok: false; reason: "invalid" | "unavailable"; message: string };

/** Checks a bearer token's signature and expiry and returns its claims. Never throws. */
export type JwtVerifier = (token: string) => Promise<JwtVerification>;

/** The caller, once authenticated. */
export interface AuthenticatedUser {
  id: string;
  role: string;
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(req: Request): string | null {
  const header = req.headers.get("authorization");
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match ? match[1] : null;
}

/**
 * Authenticates the request's caller: a valid JWT of a signed-in user (role `authenticated`, a `sub`, not an
 * anonymous sign-in). Throws {@link HttpError} 401 otherwise, or 503 when the verifier could not decide.
 */
export async function authenticate(req: Request, verify: JwtVerifier): Promise<AuthenticatedUser> {
  const token = bearerToken(req);
  if (token === null) {
    throw unauthorized("missing Authorization: Bearer <jwt> header");
  }
  const result = await verify(token);
  if (!result.ok) {
    if (result.reason === "unavailable") {
      throw new HttpError(503, "auth_unavailable", "could not verify the JWT; try again", {
        "Retry-After": "5",
      });
    }
    throw unauthorized(`invalid JWT: ${result.message}`);
  }
  const { sub, role, is_anonymous: isAnonymous } = result.claims;
  if (role !== "authenticated" || typeof sub !== "string" || sub === "" || isAnonymous === true) {
    throw unauthorized("a signed-in user is required (anonymous callers are not allowed)");
  }
  return { id: sub, role };
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, "unauthorized", message, {
    "WWW-Authenticate": 'Bearer realm="tenkaigen"',
  });
}

/** Options of {@link createSupabaseJwtVerifier}. */
export interface SupabaseJwtVerifierOptions {
  /** `SUPABASE_URL`. */
  url: string | undefined;
  /** `SUPABASE_ANON_KEY` (or a publishable key). */
  anonKey: string | undefined;
  /** The fetch the Auth client uses (tests point it at a local server). */
  fetch?: typeof fetch;
}

/**
 * The production verifier: supabase-js `auth.getClaims(token)` with the project's URL and anon key.
 * The client is built on first use, so a function without the env answers 503 instead of failing to boot.
 */
export function createSupabaseJwtVerifier(options: SupabaseJwtVerifierOptions): JwtVerifier {
  let client: ReturnType<typeof createClient> | null = null;
  return async (token) => {
    if (!options.url || !options.anonKey) {
      return {
        ok: false,
        reason: "unavailable",
        message: "SUPABASE_URL / SUPABASE_ANON_KEY not set",
      };
    }
    client ??= createClient(options.url, options.anonKey, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      global: options.fetch ? { fetch: options.fetch } : {},
    });
    try {
      const { data, error } = await client.auth.getClaims(token);
      if (error) {
        return isAuthRetryableFetchError(error)
          ? { ok: false, reason: "unavailable", message: error.message }
          : { ok: false, reason: "invalid", message: error.message };
      }
      if (!data) return { ok: false, reason: "invalid", message: "no claims" };
      return { ok: true, claims: data.claims as JwtClaims };
    } catch (error) {
      // getClaims rethrows anything that is not an AuthError (a network failure inside JWKS fetching …).
      return { ok: false, reason: "unavailable", message: String(error) };
    }
  };
}
