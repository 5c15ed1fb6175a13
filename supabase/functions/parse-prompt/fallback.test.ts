// Tests of the deterministic fallback expansion (keyword style detection, franchise, title, tags).
import assert from "node:assert/strict";
import { isStyleId, STYLE_IDS } from "../_shared/styles.ts";
import { MAX_EXPANDED_PROMPT_CHARS, MAX_PROMPT_CHARS, MAX_TAGS } from "./contract.ts";
import {
  detectFranchise,
  detectStyle,
  fallbackExpansion,
  STYLE_KEYWORDS,
  tagsFor,
  titleFromPrompt,
} from "./fallback.ts";

Deno.test("every style except none has keywords, and only known styles do", () => {
  assert.deepEqual(
    Object.keys(STYLE_KEYWORDS).sort(),
    STYLE_IDS.filter((s) => s !== "none").sort(),
  );
});

const STYLE_CASES: [string, string | null][] = [
  ["a kawaii cat in manga style", "anime"],
  ["Photorealistic portrait of an old sailor", "realistic"],
  ["hand-drawn cartoon robot", "illustration"],
  ["8-bit knight fighting a dragon", "pixel-art"],
  ["Pixel Art castle at night", "pixel-art"],
  ["soft watercolour hummingbird", "watercolor"],
  ["Art Deco travel poster of Kyoto", "vintage-poster"],
  ["a cat sitting on a fence", null],
  ["photoshop-free pixelation", null], // whole words only: neither "photo" nor "pixel"
];

for (const [prompt, style] of STYLE_CASES) {
  Deno.test(`detectStyle(${JSON.stringify(prompt)}) is ${style}`, () => {
    assert.equal(detectStyle(prompt), style);
  });
}

Deno.test("detectStyle lets the style with more matching words win", () => {
  assert.equal(detectStyle("vintage anime poster"), "vintage-poster");
});

Deno.test("detectFranchise finds names with accents, case and punctuation ignored", () => {
  assert.equal(detectFranchise("POKÉMON trainer with a Charizard!")?.name, "Pokémon");
  assert.equal(detectFranchise("goku powering up")?.name, "Dragon Ball");
  assert.equal(detectFranchise("Darth-Vader drinking tea")?.name, "Star Wars");
  assert.equal(detectFranchise("a cat drinking tea"), null);
});

Deno.test("a franchise implies its style unless the prompt asks for another", () => {
  assert.equal(fallbackExpansion({ prompt: "Naruto eating ramen" }).style, "anime");
  assert.equal(
    fallbackExpansion({ prompt: "Naruto eating ramen, watercolor" }).style,
    "watercolor",
  );
  assert.equal(fallbackExpansion({ prompt: "Yoda meditating" }).style, "none");
});

Deno.test("titleFromPrompt drops instructions and articles and Title Cases the first clause", () => {
  assert.equal(
    titleFromPrompt("Please draw a cute cat astronaut floating in space, watercolor"),
    "Cute Cat Astronaut Floating in Space",
  );
  assert.equal(titleFromPrompt("the last dragon of the north"), "Last Dragon of the North");
  assert.equal(titleFromPrompt("!!!"), "Untitled Design");
});

Deno.test("tagsFor lists style, franchise, then content words; unique and capped", () => {
  assert.deepEqual(tagsFor("Pikachu and Pikachu with a surfboard", "anime", "Pokémon"), [
    "anime",
    "pokemon",
    "pikachu",
    "surfboard",
  ]);
  const many = tagsFor(
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet",
    "none",
    null,
  );
  assert.equal(many.length, MAX_TAGS);
  assert.ok(!many.includes("none"));
});

Deno.test("the expansion mentions the product and stays within bounds", () => {
  const expansion = fallbackExpansion({
    prompt: "a fox astronaut",
    product: { kind: "hoodie", color: "navy" },
  });
  assert.equal(
    expansion.expandedPrompt,
    "a fox astronaut, centered composition, clean edges, crisp details, balanced colors, " +
      "print-ready artwork for a navy hoodie",
  );
  const long = fallbackExpansion({ prompt: "word ".repeat(MAX_PROMPT_CHARS / 5).trim() });
  assert.ok(Array.from(long.expandedPrompt).length <= MAX_EXPANDED_PROMPT_CHARS);
  assert.match(long.expandedPrompt, /print-ready artwork for merchandise$/);
});

Deno.test("the fallback is deterministic and always answers a valid style", () => {
  for (const prompt of ["", "🦊🦊🦊", "a".repeat(MAX_PROMPT_CHARS), "anime anime anime"]) {
    const first = fallbackExpansion({ prompt });
    assert.deepEqual(fallbackExpansion({ prompt }), first);
    assert.ok(isStyleId(first.style));
    assert.ok(first.title.length > 0);
  }
});
