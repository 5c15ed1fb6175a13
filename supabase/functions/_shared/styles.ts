/**
 * The generation style ids: the one TypeScript copy of the ids seeded into `public.generation_styles`.
 *
 * A Python test compares this tuple with the database, so add a style here and in a migration together.
 * The style's prompt suffix, negative prompt and sampler defaults live in the table, not here.
 */
export const STYLE_IDS = [
  "none",
  "anime",
  "realistic",
  "illustration",
  "pixel-art",
  "watercolor",
  "vintage-poster",
] as const;

/** One of {@link STYLE_IDS}. */
export type StyleId = typeof STYLE_IDS[number];

/** The style used when nothing in the prompt asks for one. */
export const DEFAULT_STYLE: StyleId = "none";

/** True when `value` is one of {@link STYLE_IDS} (exact match, case-sensitive). */
export function isStyleId(value: unknown): value is StyleId {
  return typeof value === "string" && (STYLE_IDS as readonly string[]).includes(value);
}
