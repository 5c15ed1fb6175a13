// Tests of the parse-prompt handler: Gemini is stubbed at `fetch`, the JWT verifier is a stub; no network.
import assert from "node:assert/strict";
import type { JwtVerifier } from "../_shared/auth.ts";
import { STYLE_IDS } from "../_shared/styles.ts";
import {
  MAX_BODY_BYTES,
  MAX_EXPANDED_PROMPT_CHARS,
  MAX_PROMPT_CHARS,
  MAX_TAGS,
} from "./contract.ts";
import { type Deps, handle, type LogRecord } from "./handler.ts";

const API_KEY = "test-gemini-key-do-not-log";
const USER_ID = "8d0b6c1e-3f1a-4c55-9a57-1f7f4a1f0c11";

/** Tokens the stub verifier knows. */
const TOKENS = {
  user: "user.jwt",
  anonKey: "anon.jwt",
  anonymousSignIn: "anonymous-sign-in.jwt",
  bad: "bad.jwt",
  authDown: "auth-down.jwt",
} as const;

const stubVerifier: JwtVerifier = (token) => {
  switch (token) {
    case TOKENS.user:
      return Promise.resolve({ ok: true, claims: { sub: USER_ID, role: "authenticated" } });
    case TOKENS.anonKey:
      return Promise.resolve({ ok: true, claims: { role: "anon", iss: "supabase" } });
    case TOKENS.anonymousSignIn:
      return Promise.resolve({
        ok: true,
        claims: { sub: USER_ID, role: "authenticated", is_anonymous: true },
      });
    case TOKENS.authDown:
      return Promise.resolve({ ok: false, reason: "unavailable", message: "fetch failed" });
    default:
      return Promise.resolve({
        ok: false,
        reason: "invalid",
        message: "invalid JWT: bad signature",
      });
  }
};

interface FetchCall {
  url: string;
  init: RequestInit;
}

/** A fetch that records its calls and answers with `answer()`. */
function stubFetch(answer: (call: FetchCall) => Response | Promise<Response>) {
  const calls: FetchCall[] = [];
  const fetch = ((input: string | URL | Request, init?: RequestInit) => {
    const call = { url: String(input), init: init ?? {} };
    calls.push(call);
    return Promise.resolve(answer(call));
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

/** A Gemini `generateContent` answer whose candidate text is `text`. */
function geminiAnswer(text: string, extra: Record<string, unknown> = {}): Response {
  return Response.json({
    candidates: [{ content: { role: "model", parts: [{ text }] }, finishReason: "STOP", index: 0 }],
    usageMetadata: { promptTokenCount: 100, candidatesTokenCount: 50, totalTokenCount: 150 },
    modelVersion: "gemini-2.5-flash",
    ...extra,
  });
}

const GOOD_EXPANSION = {
  expandedPrompt: "A cheerful orange fox astronaut floating among stars, holding a tiny flag.",
  style: "watercolor",
  franchise: null,
  title: "Fox in Orbit",
  tags: ["fox", "space", "Astronaut", "fox"],
};

function makeDeps(overrides: Partial<Deps> & { envVars?: Record<string, string> } = {}) {
  const logs: LogRecord[] = [];
  const envVars = overrides.envVars ?? { GEMINI_API_KEY: API_KEY };
  const deps: Deps = {
    env: (name) => envVars[name],
    fetch: () => Promise.reject(new Error("unexpected fetch")),
    verifyJwt: stubVerifier,
    now: () => 0,
    log: (record) => logs.push(record),
    ...overrides,
  };
  return { deps, logs };
}

function post(body: unknown, init: { token?: string | null; headers?: HeadersInit } = {}): Request {
  const headers = new Headers(init.headers);
  if (!headers.has("content-type")) headers.set("content-type", "application/json");
  const token = init.token === undefined ? TOKENS.user : init.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  return new Request("http://localhost/functions/v1/parse-prompt", {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
  const body = await response.json();
  assert.deepEqual(Object.keys(body), ["error"]);
  return body.error;
}

// --- happy path -------------------------------------------------------------------------------------------

Deno.test("returns Gemini's expansion with source gemini", async () => {
  const gemini = stubFetch(() => geminiAnswer(JSON.stringify(GOOD_EXPANSION)));
  const { deps } = makeDeps({
    fetch: gemini.fetch,
    envVars: { GEMINI_API_KEY: API_KEY, GEMINI_MODEL: "gemini-2.5-flash-lite" },
  });

  const response = await handle(
    post({
      prompt: "  a fox astronaut, watercolor  ",
      product: { kind: "t-shirt", color: "black" },
    }),
    deps,
  );

  assert.equal(response.status, 200);
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  assert.deepEqual(await response.json(), {
    expandedPrompt: GOOD_EXPANSION.expandedPrompt,
    style: "watercolor",
    franchise: null,
    title: "Fox in Orbit",
    tags: ["fox", "space", "astronaut"],
    source: "gemini",
  });
});

Deno.test("calls generateContent in JSON mode with the style enum and the key in a header", async () => {
  const gemini = stubFetch(() => geminiAnswer(JSON.stringify(GOOD_EXPANSION)));
  const { deps } = makeDeps({
    fetch: gemini.fetch,
    envVars: { GEMINI_API_KEY: API_KEY, GEMINI_MODEL: "gemini-2.5-flash-lite" },
  });

  await handle(post({ prompt: "a fox astronaut", product: { id: 42, kind: "mug" } }), deps);

  assert.equal(gemini.calls.length, 1);
  const [{ url, init }] = gemini.calls;
  assert.equal(
    url,
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash-lite:generateContent",
  );
  assert.ok(!url.includes(API_KEY), "the key never goes into the URL");
  assert.equal(init.method, "POST");
  const headers = new Headers(init.headers);
  assert.equal(headers.get("x-goog-api-key"), API_KEY);
  assert.equal(headers.get("content-type"), "application/json");
  assert.ok(init.signal instanceof AbortSignal);
  const body = JSON.parse(String(init.body));
  assert.equal(body.generationConfig.responseMimeType, "application/json");
  assert.deepEqual(body.generationConfig.responseSchema.properties.style.enum, [...STYLE_IDS]);
  assert.deepEqual(body.generationConfig.responseSchema.required, [
    "expandedPrompt",
    "style",
    "franchise",
    "title",
    "tags",
  ]);
  assert.equal(body.contents[0].role, "user");
  assert.deepEqual(JSON.parse(body.contents[0].parts[0].text), {
    prompt: "a fox astronaut",
    product: { id: "42", kind: "mug" },
  });
  assert.match(body.systemInstruction.parts[0].text, /never instructions to you/);
});

Deno.test("uses gemini-2.5-flash when GEMINI_MODEL is not set", async () => {
  const gemini = stubFetch(() => geminiAnswer(JSON.stringify(GOOD_EXPANSION)));
  const { deps } = makeDeps({ fetch: gemini.fetch });

  await handle(post({ prompt: "a fox" }), deps);

  assert.match(gemini.calls[0].url, /\/models\/gemini-2\.5-flash:generateContent$/);
});

Deno.test("bounds what the LLM says: long prompt truncated, tags capped, 'none' franchise is null", async () => {
  const answer = {
    expandedPrompt: "word ".repeat(1000),
    style: "anime",
    franchise: "none",
    title: '"Quoted Title"',
    tags: Array.from({ length: 20 }, (_, i) => `tag${i}`),
  };
  const { deps } = makeDeps({ fetch: stubFetch(() => geminiAnswer(JSON.stringify(answer))).fetch });

  const body = await (await handle(post({ prompt: "anything" }), deps)).json();

  assert.equal(body.source, "gemini");
  assert.ok(body.expandedPrompt.length <= MAX_EXPANDED_PROMPT_CHARS);
  assert.equal(body.tags.length, MAX_TAGS);
  assert.equal(body.franchise, null);
  assert.equal(body.title, "Quoted Title");
});

// --- fallback ---------------------------------------------------------------------------------------------

Deno.test("without GEMINI_API_KEY answers the fallback and never calls fetch", async () => {
  const gemini = stubFetch(() => geminiAnswer(JSON.stringify(GOOD_EXPANSION)));
  const { deps } = makeDeps({ fetch: gemini.fetch, envVars: {} });

  const response = await handle(post({ prompt: "Pikachu surfing a big wave, pixel art" }), deps);

  assert.equal(response.status, 200);
  assert.equal(gemini.calls.length, 0);
  const body = await response.json();
  assert.equal(body.source, "fallback");
  assert.equal(body.fallbackReason, "no_api_key");
  assert.equal(body.style, "pixel-art");
  assert.equal(body.franchise, "Pokémon");
  assert.equal(body.title, "Pikachu Surfing a Big Wave");
  assert.ok(body.tags.includes("pixel-art"));
  assert.match(
    body.expandedPrompt,
    /^Pikachu surfing a big wave, pixel art, centered composition, /,
  );
});

Deno.test("a blank GEMINI_API_KEY counts as no key", async () => {
  const { deps } = makeDeps({ envVars: { GEMINI_API_KEY: "  " } });
  const body = await (await handle(post({ prompt: "a cat" }), deps)).json();
  assert.equal(body.fallbackReason, "no_api_key");
});

const LLM_FAILURES: [string, () => Response | Promise<Response>, string][] = [
  ["HTTP 500", () => new Response("upstream exploded", { status: 500 }), "llm_http_error"],
  ["HTTP 429", () => Response.json({ error: { code: 429 } }, { status: 429 }), "llm_http_error"],
  ["a network error", () => Promise.reject(new TypeError("connection reset")), "llm_network_error"],
  ["a body that is not JSON", () => new Response("<html>oops</html>"), "llm_invalid_json"],
  [
    "candidate text that is not JSON",
    () => geminiAnswer("Sure! Here is your design: {"),
    "llm_invalid_json",
  ],
  [
    "a style outside STYLE_IDS",
    () => geminiAnswer(JSON.stringify({ ...GOOD_EXPANSION, style: "cyberpunk" })),
    "llm_invalid_style",
  ],
  [
    "a style id in the wrong case",
    () => geminiAnswer(JSON.stringify({ ...GOOD_EXPANSION, style: "Anime" })),
    "llm_invalid_style",
  ],
  [
    "a missing expandedPrompt",
    () => geminiAnswer(JSON.stringify({ ...GOOD_EXPANSION, expandedPrompt: undefined })),
    "llm_invalid_output",
  ],
  [
    "tags that are not strings",
    () => geminiAnswer(JSON.stringify({ ...GOOD_EXPANSION, tags: [1, 2] })),
    "llm_invalid_output",
  ],
  ["a JSON array", () => geminiAnswer("[1, 2, 3]"), "llm_invalid_output"],
  ["no candidates", () => Response.json({ candidates: [] }), "llm_invalid_output"],
  [
    "a blocked prompt",
    () => Response.json({ promptFeedback: { blockReason: "SAFETY" } }),
    "llm_blocked",
  ],
  [
    "a truncated answer",
    () =>
      Response.json({
        candidates: [{
          content: { parts: [{ text: '{"expandedPrompt": "a' }] },
          finishReason: "MAX_TOKENS",
        }],
      }),
    "llm_incomplete",
  ],
];

for (const [what, answer, reason] of LLM_FAILURES) {
  Deno.test(`falls back with ${reason} when Gemini answers ${what}`, async () => {
    const { deps, logs } = makeDeps({ fetch: stubFetch(answer).fetch });

    const response = await handle(post({ prompt: "a dragon poster, art deco" }), deps);

    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.source, "fallback");
    assert.equal(body.fallbackReason, reason);
    assert.equal(body.style, "vintage-poster");
    assert.ok(STYLE_IDS.includes(body.style));
    assert.ok(logs.some((log) => log.action === "gemini_failed" && log.reason === reason));
  });
}

Deno.test("falls back with llm_timeout when Gemini does not answer in GEMINI_TIMEOUT_MS", async () => {
  let sawAbort = false;
  const hang =
    ((_url: string | URL | Request, init?: RequestInit) =>
      new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener("abort", () => {
          sawAbort = true;
          reject(new DOMException("aborted", "AbortError"));
        });
      })) as typeof fetch;
  const { deps } = makeDeps({
    fetch: hang,
    envVars: { GEMINI_API_KEY: API_KEY, GEMINI_TIMEOUT_MS: "20" },
  });

  const body = await (await handle(post({ prompt: "a cat" }), deps)).json();

  assert.ok(sawAbort);
  assert.equal(body.source, "fallback");
  assert.equal(body.fallbackReason, "llm_timeout");
});

Deno.test("never logs the API key or the prompt", async () => {
  const { deps, logs } = makeDeps({
    fetch: stubFetch(() => new Response("bad key " + API_KEY, { status: 400 })).fetch,
  });

  await handle(post({ prompt: "my secret birthday idea" }), deps);

  const text = JSON.stringify(logs);
  assert.ok(!text.includes(API_KEY));
  assert.ok(!text.includes("birthday"));
});

// --- input bounds -----------------------------------------------------------------------------------------

Deno.test("413 for a body over the limit by Content-Length", async () => {
  const { deps } = makeDeps();
  const response = await handle(post({ prompt: "x".repeat(MAX_BODY_BYTES) }), deps);
  assert.equal(response.status, 413);
  assert.equal((await errorOf(response)).code, "payload_too_large");
});

Deno.test("413 for a streamed body over the limit without Content-Length", async () => {
  const chunk = new TextEncoder().encode("x".repeat(4096));
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ < 100) controller.enqueue(chunk);
      else controller.close();
    },
  });
  const req = new Request("http://localhost/functions/v1/parse-prompt", {
    method: "POST",
    headers: { authorization: `Bearer ${TOKENS.user}`, "content-type": "application/json" },
    body: stream,
  });
  assert.equal(req.headers.get("content-length"), null);
  const { deps } = makeDeps();

  const response = await handle(req, deps);

  assert.equal(response.status, 413);
  assert.ok(sent < 100, "stops reading once over the limit");
});

const INVALID_INPUTS: [string, unknown, RegExp][] = [
  [
    "a prompt over the limit",
    { prompt: "y".repeat(MAX_PROMPT_CHARS + 1) },
    /^prompt: must be 1 to 2000/,
  ],
  ["an empty prompt", { prompt: "   " }, /^prompt: must be 1 to 2000 characters \(got 0\)/],
  ["no prompt", { product: { kind: "mug" } }, /^prompt: is required/],
  ["a prompt that is not a string", { prompt: 42 }, /^prompt: must be a string/],
  [
    "a product that is not an object",
    { prompt: "a cat", product: "mug" },
    /^product: must be an object/,
  ],
  [
    "a product field that is not a string",
    { prompt: "a cat", product: { kind: 3 } },
    /^product\.kind:/,
  ],
  [
    "a product field too long",
    { prompt: "a", product: { color: "c".repeat(65) } },
    /^product\.color:/,
  ],
  ["a JSON array", [{ prompt: "a cat" }], /^body: must be a JSON object/],
];

for (const [what, body, message] of INVALID_INPUTS) {
  Deno.test(`400 naming the field for ${what}`, async () => {
    const { deps } = makeDeps();
    const response = await handle(post(body), deps);
    assert.equal(response.status, 400);
    const error = await errorOf(response);
    assert.equal(error.code, "invalid_input");
    assert.match(error.message, message);
  });
}

Deno.test("a 2000-character prompt of astral-plane characters is accepted (counted as Postgres does)", async () => {
  const { deps } = makeDeps({ envVars: {} });
  const response = await handle(post({ prompt: "🦊".repeat(MAX_PROMPT_CHARS) }), deps);
  assert.equal(response.status, 200);
});

Deno.test("400 invalid_json for a body that is not JSON", async () => {
  const { deps } = makeDeps();
  const response = await handle(post("{prompt: 'a cat'"), deps);
  assert.equal(response.status, 400);
  assert.equal((await errorOf(response)).code, "invalid_json");
});

Deno.test("415 for a body that is not declared as JSON", async () => {
  const { deps } = makeDeps();
  const response = await handle(
    post("prompt=a+cat", { headers: { "content-type": "text/plain" } }),
    deps,
  );
  assert.equal(response.status, 415);
});

// --- authentication ---------------------------------------------------------------------------------------

Deno.test("401 without an Authorization header, before reading the body", async () => {
  let verified = 0;
  const { deps } = makeDeps({ verifyJwt: (t) => (verified++, stubVerifier(t)) });

  const response = await handle(
    post({ prompt: "x".repeat(MAX_BODY_BYTES) }, { token: null }),
    deps,
  );

  assert.equal(response.status, 401);
  assert.equal(verified, 0);
  assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="tenkaigen"');
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  assert.equal((await errorOf(response)).code, "unauthorized");
});

Deno.test("401 for an Authorization header that is not a bearer token", async () => {
  const { deps } = makeDeps();
  const req = post({ prompt: "a cat" }, {
    token: null,
    headers: { authorization: "Basic dXNlcjpwdw==" },
  });
  assert.equal((await handle(req, deps)).status, 401);
});

Deno.test("401 for an invalid JWT", async () => {
  const { deps } = makeDeps();
  const response = await handle(post({ prompt: "a cat" }, { token: TOKENS.bad }), deps);
  assert.equal(response.status, 401);
  assert.match((await errorOf(response)).message, /^invalid JWT/);
});

Deno.test("401 for the anon key's JWT (role anon, no sub)", async () => {
  const { deps } = makeDeps();
  const response = await handle(post({ prompt: "a cat" }, { token: TOKENS.anonKey }), deps);
  assert.equal(response.status, 401);
  assert.match((await errorOf(response)).message, /signed-in user is required/);
});

Deno.test("401 for an anonymous sign-in (is_anonymous)", async () => {
  const { deps } = makeDeps();
  const response = await handle(post({ prompt: "a cat" }, { token: TOKENS.anonymousSignIn }), deps);
  assert.equal(response.status, 401);
});

Deno.test("503 with Retry-After when the JWT cannot be verified right now", async () => {
  const { deps } = makeDeps();
  const response = await handle(post({ prompt: "a cat" }, { token: TOKENS.authDown }), deps);
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("retry-after"), "5");
  assert.equal((await errorOf(response)).code, "auth_unavailable");
});

// --- CORS, method, unexpected errors ----------------------------------------------------------------------

Deno.test("answers the CORS preflight without authentication", async () => {
  let verified = 0;
  const { deps } = makeDeps({ verifyJwt: (t) => (verified++, stubVerifier(t)) });
  const req = new Request("http://localhost/functions/v1/parse-prompt", {
    method: "OPTIONS",
    headers: {
      origin: "https://shop.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, x-client-info, apikey, content-type",
    },
  });

  const response = await handle(req, deps);

  assert.equal(response.status, 204);
  assert.equal(verified, 0);
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  const allowed = response.headers.get("access-control-allow-headers")!.split(/,\s*/);
  for (const header of ["authorization", "x-client-info", "apikey", "content-type"]) {
    assert.ok(allowed.includes(header), `${header} is allowed`);
  }
  assert.match(response.headers.get("access-control-allow-methods")!, /\bPOST\b/);
  assert.equal(await response.text(), "");
});

for (const method of ["GET", "PUT", "DELETE"]) {
  Deno.test(`405 with Allow for ${method}`, async () => {
    const { deps } = makeDeps();
    const req = new Request("http://localhost/functions/v1/parse-prompt", {
      method,
      headers: { authorization: `Bearer ${TOKENS.user}` },
    });
    const response = await handle(req, deps);
    assert.equal(response.status, 405);
    assert.equal(response.headers.get("allow"), "POST, OPTIONS");
    assert.equal((await errorOf(response)).code, "method_not_allowed");
  });
}

Deno.test("500 internal_error, without details, when something unexpected throws", async () => {
  const { deps, logs } = makeDeps({
    verifyJwt: () => Promise.reject(new Error("boom: secret detail")),
  });
  const response = await handle(post({ prompt: "a cat" }), deps);
  assert.equal(response.status, 500);
  assert.deepEqual(await errorOf(response), {
    code: "internal_error",
    message: "unexpected error",
  });
  assert.ok(logs.some((log) => log.status === 500));
});
