/**
 * JSON over HTTP for the Edge Functions: one error shape, one way to read a bounded JSON body.
 *
 * Every error answer is `{ "error": { "code": "...", "message": "..." } }` with a deliberate status and the CORS
 * headers, so a browser can read it.
 */
import { corsHeaders } from "./cors.ts";

/** Machine-readable error codes shared by the functions (the `error.code` of an error answer). */
export type ErrorCode =
  | "invalid_input"
  | "invalid_json"
  | "unauthorized"
  | "method_not_allowed"
  | "payload_too_large"
  | "unsupported_media_type"
  | "auth_unavailable"
  | "internal_error";

/** The body of every error answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** An error that becomes an HTTP answer as is; anything else thrown by a handler becomes a 500. */
export class HttpError extends Error {
  override readonly name = "HttpError";

  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** A JSON answer with the CORS headers. */
export function jsonResponse(
  body: unknown,
  status = 200,
  headers: Readonly<Record<string, string>> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...corsHeaders, "Content-Type": "application/json; charset=utf-8", ...headers },
  });
}

/** The JSON answer for an {@link HttpError}. */
export function errorResponse(error: HttpError): Response {
  const body: ErrorBody = { error: { code: error.code, message: error.message } };
  return jsonResponse(body, error.status, error.headers);
}

/**
 * Reads the request body as JSON, refusing more than `maxBytes`.
 *
 * `Content-Length` is checked first; a body without one (chunked) is counted while it streams, so an oversize
 * body is never held in memory whole. Throws {@link HttpError} 413, 415 or 400.
 */
export async function readJsonBody(req: Request, maxBytes: number): Promise<unknown> {
  const contentType = req.headers.get("content-type");
  if (contentType !== null && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType.trim())) {
    throw new HttpError(415, "unsupported_media_type", "body must be application/json");
  }
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    throw tooLarge(maxBytes);
  }
  const bytes = await readLimited(req, maxBytes);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "invalid_json", "body is not valid UTF-8");
  }
  if (text.trim() === "") {
    throw new HttpError(400, "invalid_json", "body is empty; expected a JSON object");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "invalid_json", "body is not valid JSON");
  }
}

async function readLimited(req: Request, maxBytes: number): Promise<Uint8Array> {
  if (req.body === null) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        throw tooLarge(maxBytes);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, "payload_too_large", `body must be at most ${maxBytes} bytes`);
}
