/**
 * CORS for browser callers of the Edge Functions.
 *
 * The header list comes from supabase-js itself (`@supabase/supabase-js/cors`), so it stays in sync with the
 * headers the SDK sends (`authorization`, `apikey`, `x-client-info`, `content-type`, tracing headers …).
 */
import { corsHeaders as supabaseCorsHeaders } from "@supabase/supabase-js/cors";

/** Headers every response of a browser-facing function carries. */
export const corsHeaders: Readonly<Record<string, string>> = Object.freeze({
  ...supabaseCorsHeaders,
  "Access-Control-Max-Age": "86400",
});

/** The answer to a CORS preflight (`OPTIONS`): no body, only the CORS headers. */
export function preflightResponse(): Response {
  return new Response(null, { status: 204, headers: corsHeaders });
}
