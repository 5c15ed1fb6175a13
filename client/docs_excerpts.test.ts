// docs/client.md quotes the client module instead of keeping a copy: every TypeScript block there is an excerpt
// whose `<!-- excerpt: <file> · <name> -->` line names its source, and must still appear verbatim in that file.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const EXCERPT = /<!-- excerpt: (\S+) · ([^>]+?) -->\n```ts\n([\s\S]*?)\n```/g;

Deno.test("every TypeScript block in docs/client.md is a verbatim excerpt of the file it names", async () => {
  const doc = await Deno.readTextFile(new URL("docs/client.md", ROOT));
  const excerpts = [...doc.matchAll(EXCERPT)];
  const tsBlocks = doc.match(/^```ts$/gm) ?? [];

  assert.ok(excerpts.length >= 10, `expected the flow's excerpts, found ${excerpts.length}`);
  assert.equal(
    excerpts.length,
    tsBlocks.length,
    "a ```ts block without an excerpt line is a second copy",
  );
  for (const [, file, name, code] of excerpts) {
    assert.match(file, /^client\/[\w.]+\.ts$/, `${name}: excerpts come from client/`);
    const source = await Deno.readTextFile(new URL(file, ROOT));
    assert.ok(
      source.includes(code),
      `${file} · ${name} no longer matches; copy it again from the source`,
    );
  }
});
