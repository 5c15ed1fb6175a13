// Tests of the Gemini response parsing details not covered through the handler.
import assert from "node:assert/strict";
import { LlmError, parseGeminiResponse } from "./gemini.ts";

const answer = {
  expandedPrompt: "A fox astronaut.",
  style: "anime",
  franchise: " Pokémon ",
  title: "Fox",
  tags: [" Fox ", "SPACE"],
};

function response(parts: unknown[], finishReason = "STOP") {
  return { candidates: [{ content: { role: "model", parts }, finishReason }] };
}

Deno.test("joins text parts and skips thought parts", () => {
  const text = JSON.stringify(answer);
  const expansion = parseGeminiResponse(
    response([{ text: "thinking…", thought: true }, { text: text.slice(0, 10) }, {
      text: text.slice(10),
    }]),
  );
  assert.deepEqual(expansion, {
    expandedPrompt: "A fox astronaut.",
    style: "anime",
    franchise: "Pokémon",
    title: "Fox",
    tags: ["fox", "space"],
  });
});

Deno.test("a missing franchise is null", () => {
  const { franchise: _, ...rest } = answer;
  assert.equal(parseGeminiResponse(response([{ text: JSON.stringify(rest) }])).franchise, null);
});

Deno.test("anything that is not a generateContent body is invalid output", () => {
  for (const body of [null, "text", [], { candidates: "x" }, { candidates: [null] }]) {
    assert.throws(
      () => parseGeminiResponse(body),
      (error: unknown) => error instanceof LlmError && error.reason === "llm_invalid_output",
    );
  }
});

Deno.test("a candidate without parts is invalid JSON", () => {
  assert.throws(
    () => parseGeminiResponse({ candidates: [{ finishReason: "STOP" }] }),
    (error: unknown) => error instanceof LlmError && error.reason === "llm_invalid_json",
  );
});
