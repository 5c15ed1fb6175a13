// Tests of caller authentication: header parsing, the claim rules, and the production verifier
// (supabase-js getClaims) against a stub Auth server on 127.0.0.1.
import assert from "node:assert/strict";
import { authenticate, bearerToken, createSupabaseJwtVerifier, type JwtVerifier } from "./auth.ts";
import { HttpError } from "./http.ts";

const USER_ID = "2f6a3c1d-0b7e-4f1e-8f4e-5f0d1b2c3a4b";

function request(authorization?: string): Request {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  return new Request("http://localhost/", { method: "POST", headers });
}

/** An unsigned-looking HS256 JWT: supabase-js sends HS256 tokens to the Auth server to check. */
function hs256Jwt(claims: Record<string, unknown>): string {
  const b64 = (value: unknown) =>
    btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}.c2lnbmF0dXJl`;
}

const inOneHour = () => Math.floor(Date.now() / 1000) + 3600;

Deno.test("bearerToken reads 'Bearer <token>' case-insensitively and nothing else", () => {
  assert.equal(bearerToken(request("Bearer abc.def.ghi")), "abc.def.ghi");
  assert.equal(bearerToken(request("bearer abc")), "abc");
  assert.equal(bearerToken(request("Basic abc")), null);
  assert.equal(bearerToken(request("Bearer")), null);
  assert.equal(bearerToken(request("Bearer a b")), null);
  assert.equal(bearerToken(request()), null);
});

Deno.test("authenticate accepts a signed-in user and returns its id", async () => {
  const verify: JwtVerifier = () =>
    Promise.resolve({ ok: true, claims: { sub: USER_ID, role: "authenticated" } });
  assert.deepEqual(await authenticate(request("Bearer t"), verify), {
    id: USER_ID,
    role: "authenticated",
  });
});

for (
  const [what, claims] of [
    ["role anon", { role: "anon" }],
    ["role service_role", { role: "service_role", sub: USER_ID }],
    ["no sub", { role: "authenticated" }],
    ["an anonymous sign-in", { role: "authenticated", sub: USER_ID, is_anonymous: true }],
  ] as const
) {
  Deno.test(`authenticate refuses ${what} with 401`, async () => {
    const verify: JwtVerifier = () => Promise.resolve({ ok: true, claims });
    await assert.rejects(
      authenticate(request("Bearer t"), verify),
      (error: unknown) => error instanceof HttpError && error.status === 401,
    );
  });
}

/** Runs `body` with a stub Auth server that knows one good token; returns what it saw. */
async function withAuthServer(
  answer: (req: Request) => Response,
  body: (url: string) => Promise<void>,
): Promise<{ path: string; headers: Headers }[]> {
  const seen: { path: string; headers: Headers }[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      seen.push({ path: new URL(req.url).pathname, headers: new Headers(req.headers) });
      return answer(req);
    },
  );
  try {
    await body(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
  return seen;
}

Deno.test("the Supabase verifier accepts a token the Auth server vouches for", async () => {
  const token = hs256Jwt({ sub: USER_ID, role: "authenticated", exp: inOneHour() });
  const seen = await withAuthServer(
    (req) =>
      req.headers.get("authorization") === `Bearer ${token}`
        ? Response.json({ id: USER_ID, aud: "authenticated", role: "authenticated" })
        : Response.json({ code: 403, error_code: "bad_jwt", msg: "invalid JWT" }, { status: 403 }),
    async (url) => {
      const verify = createSupabaseJwtVerifier({ url, anonKey: "anon-key" });
      const result = await verify(token);
      assert.ok(result.ok);
      assert.equal(result.claims.sub, USER_ID);
      assert.equal(result.claims.role, "authenticated");
    },
  );
  assert.equal(seen.length, 1);
  assert.equal(seen[0].path, "/auth/v1/user");
  assert.equal(seen[0].headers.get("apikey"), "anon-key");
});

Deno.test("the Supabase verifier says invalid when the Auth server rejects the token", async () => {
  const token = hs256Jwt({ sub: USER_ID, role: "authenticated", exp: inOneHour() });
  await withAuthServer(
    () => Response.json({ code: 403, error_code: "bad_jwt", msg: "invalid JWT" }, { status: 403 }),
    async (url) => {
      const result = await createSupabaseJwtVerifier({ url, anonKey: "anon-key" })(token);
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.reason, "invalid");
    },
  );
});

Deno.test("the Supabase verifier says unavailable when the Auth server is down", async () => {
  const token = hs256Jwt({ sub: USER_ID, role: "authenticated", exp: inOneHour() });
  await withAuthServer(
    () => new Response("upstream unavailable", { status: 503 }),
    async (url) => {
      const result = await createSupabaseJwtVerifier({ url, anonKey: "anon-key" })(token);
      assert.equal(!result.ok && result.reason, "unavailable");
    },
  );
});

Deno.test("the Supabase verifier refuses expired and malformed tokens without calling Auth", async () => {
  const expired = hs256Jwt({ sub: USER_ID, role: "authenticated", exp: 1_000_000 });
  const seen = await withAuthServer(
    () => Response.json({ id: USER_ID }),
    async (url) => {
      const verify = createSupabaseJwtVerifier({ url, anonKey: "anon-key" });
      for (const token of [expired, "sb_publishable_abc123", "not-a-jwt"]) {
        const result = await verify(token);
        assert.equal(!result.ok && result.reason, "invalid", token);
      }
    },
  );
  assert.equal(seen.length, 0);
});

Deno.test("the Supabase verifier is unavailable, not crashing, without SUPABASE_URL", async () => {
  const result = await createSupabaseJwtVerifier({ url: undefined, anonKey: "k" })("t");
  assert.equal(!result.ok && result.reason, "unavailable");
});
