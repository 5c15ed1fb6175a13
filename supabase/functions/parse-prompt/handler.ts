/**
 * parse-prompt: the hero page's prompt → a structured generation request.
 *
 * `handle(req, deps)` holds all the logic; `index.ts` only wires it to `Deno.serve`. Everything from outside
 * (env, fetch for Gemini, the JWT verifier, the clock, the log) comes in through {@link Deps}, so tests run it
 * with stubs and no network.
 *
 * Order of checks: CORS preflight → method → caller's JWT → body size → body shape → expansion.
 */
import { authenticate, createSupabaseJwtVerifier, type JwtVerifier } from "../_shared/auth.ts";
import { preflightResponse } from "../_shared/cors.ts";
import { errorResponse, HttpError, jsonResponse, readJsonBody } from "../_shared/http.ts";
import {
  charLength,
  type FallbackReason,
  MAX_BODY_BYTES,
  type ParsePromptInput,
  type ParsePromptResult,
  validateInput,
} from "./contract.ts";
import { fallbackExpansion } from "./fallback.ts";
import {
  DEFAULT_GEMINI_MODEL,
  DEFAULT_GEMINI_TIMEOUT_MS,
  expandWithGemini,
  LlmError,
} from "./gemini.ts";

/** One structured log record (printed as a JSON line in production). */
export type LogRecord = Record<string, string | number | boolean | null>;

/** What the handler needs from the outside world. */
export interface Deps {
  /** Reads an env var: `GEMINI_API_KEY`, `GEMINI_MODEL`, `GEMINI_TIMEOUT_MS`. */
  env: (name: string) => string | undefined;
  /** The fetch used for Gemini. */
  fetch: typeof fetch;
  /** Verifies the caller's JWT. */
  verifyJwt: JwtVerifier;
  /** Milliseconds, for durations in the log. */
  now: () => number;
  log: (record: LogRecord) => void;
}

/** Handles one request. Never throws: every failure is a JSON error answer. */
export async function handle(req: Request, deps: Deps): Promise<Response> {
  const started = deps.now();
  if (req.method === "OPTIONS") return preflightResponse();
  try {
    if (req.method !== "POST") {
      throw new HttpError(405, "method_not_allowed", `method ${req.method} not allowed; use POST`, {
        Allow: "POST, OPTIONS",
      });
    }
    const user = await authenticate(req, deps.verifyJwt);
    const input = validateInput(await readJsonBody(req, MAX_BODY_BYTES));
    const result = await expand(input, deps);
    deps.log({
      action: "parse_prompt",
      user_id: user.id,
      source: result.source,
      fallback_reason: result.source === "fallback" ? result.fallbackReason : null,
      style: result.style,
      prompt_chars: charLength(input.prompt),
      duration_ms: deps.now() - started,
    });
    return jsonResponse(result);
  } catch (error) {
    if (error instanceof HttpError) {
      deps.log({ action: "parse_prompt", status: error.status, error_code: error.code });
      return errorResponse(error);
    }
    deps.log({ action: "parse_prompt", status: 500, error: String(error) });
    return errorResponse(new HttpError(500, "internal_error", "unexpected error"));
  }
}

/** Gemini when a key is set and it answers well; the deterministic fallback otherwise. */
export async function expand(input: ParsePromptInput, deps: Deps): Promise<ParsePromptResult> {
  const apiKey = deps.env("GEMINI_API_KEY")?.trim();
  if (!apiKey) return fallback(input, "no_api_key");
  try {
    const expansion = await expandWithGemini(input, {
      apiKey,
      model: deps.env("GEMINI_MODEL")?.trim() || DEFAULT_GEMINI_MODEL,
      timeoutMs: positiveInt(deps.env("GEMINI_TIMEOUT_MS")) ?? DEFAULT_GEMINI_TIMEOUT_MS,
      fetch: deps.fetch,
    });
    return { ...expansion, source: "gemini" };
  } catch (error) {
    if (!(error instanceof LlmError)) throw error;
    deps.log({ action: "gemini_failed", reason: error.reason, message: error.message });
    return fallback(input, error.reason);
  }
}

function fallback(input: ParsePromptInput, reason: FallbackReason): ParsePromptResult {
  return { ...fallbackExpansion(input), source: "fallback", fallbackReason: reason };
}

function positiveInt(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** The production dependencies, from `Deno.env`. */
export function defaultDeps(): Deps {
  const env = (name: string) => Deno.env.get(name);
  return {
    env,
    fetch: globalThis.fetch,
    verifyJwt: createSupabaseJwtVerifier({
      url: env("SUPABASE_URL"),
      anonKey: env("SUPABASE_ANON_KEY") ?? env("SUPABASE_PUBLISHABLE_KEY"),
    }),
    now: () => performance.now(),
    // deno-lint-ignore no-console
    log: (record) => console.log(JSON.stringify(record)),
  };
}
