// parse-prompt Edge Function entry point: wires Deno.serve to the handler (all logic is in handler.ts).
import { defaultDeps, handle } from "./handler.ts";

const deps = defaultDeps();

Deno.serve((req) => handle(req, deps));
