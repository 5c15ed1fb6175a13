/**
 * The parse-prompt request and answer: types, bounds and input validation.
 *
 * Request: `{ prompt: string, product?: { id?, kind?, color?, size? } }`.
 * Answer: `{ expandedPrompt, style, franchise, title, tags, source }`, plus `fallbackReason` when the answer
 * comes from the deterministic fallback instead of the LLM.
 */
import { HttpError } from "../_shared/http.ts";
import type { StyleId } from "../_shared/styles.ts";

/** Largest request body accepted, in bytes. */
export const MAX_BODY_BYTES = 16 * 1024;
/** Prompt length bounds, in characters (code points, as Postgres counts them), after trimming. */
export const MIN_PROMPT_CHARS = 1;
export const MAX_PROMPT_CHARS = 2000;
/** Length bound of each product field, in characters. */
export const MAX_PRODUCT_FIELD_CHARS = 64;
/** Output bounds: the answer never exceeds these, whatever the LLM says. */
export const MAX_EXPANDED_PROMPT_CHARS = 2000;
export const MAX_TITLE_CHARS = 80;
export const MAX_FRANCHISE_CHARS = 80;
export const MAX_TAGS = 8;
export const MAX_TAG_CHARS = 32;

/** The optional product the design is for (from the product designer page). */
export interface ProductContext {
  id?: string;
  kind?: string;
  color?: string;
  size?: string;
}

/** A validated request. */
export interface ParsePromptInput {
  prompt: string;
  product?: ProductContext;
}

/** The structured request the hero page builds a generation job from. */
export interface Expansion {
  expandedPrompt: string;
  style: StyleId;
  franchise: string | null;
  title: string;
  tags: string[];
}

/** Why the answer is the fallback expansion. */
export type FallbackReason =
  | "no_api_key"
  | "llm_timeout"
  | "llm_network_error"
  | "llm_http_error"
  | "llm_blocked"
  | "llm_incomplete"
  | "llm_invalid_json"
  | "llm_invalid_output"
  | "llm_invalid_style";

/** The answer of parse-prompt. */
export type ParsePromptResult =
  | Expansion & { source: "gemini" }
  | Expansion & { source: "fallback"; fallbackReason: FallbackReason };

const PRODUCT_FIELDS = ["id", "kind", "color", "size"] as const;

/** Validates a parsed JSON body. Throws {@link HttpError} 400 naming the offending field. */
export function validateInput(body: unknown): ParsePromptInput {
  if (!isPlainObject(body)) {
    throw invalid("body", "must be a JSON object");
  }
  const { prompt, product } = body;
  if (typeof prompt !== "string") {
    throw invalid("prompt", prompt === undefined ? "is required" : "must be a string");
  }
  const trimmed = prompt.trim();
  const length = charLength(trimmed);
  if (length < MIN_PROMPT_CHARS || length > MAX_PROMPT_CHARS) {
    throw invalid(
      "prompt",
      `must be ${MIN_PROMPT_CHARS} to ${MAX_PROMPT_CHARS} characters (got ${length})`,
    );
  }
  const input: ParsePromptInput = { prompt: trimmed };
  if (product !== undefined && product !== null) {
    input.product = validateProduct(product);
  }
  return input;
}

function validateProduct(product: unknown): ProductContext {
  if (!isPlainObject(product)) {
    throw invalid("product", "must be an object");
  }
  const out: ProductContext = {};
  for (const field of PRODUCT_FIELDS) {
    const value = product[field];
    if (value === undefined || value === null) continue;
    const text = typeof value === "number" && field === "id" ? String(value) : value;
    if (typeof text !== "string") {
      throw invalid(`product.${field}`, "must be a string");
    }
    const trimmed = text.trim();
    if (charLength(trimmed) > MAX_PRODUCT_FIELD_CHARS) {
      throw invalid(`product.${field}`, `must be at most ${MAX_PRODUCT_FIELD_CHARS} characters`);
    }
    if (trimmed !== "") out[field] = trimmed;
  }
  return out;
}

/** Length in code points, the way Postgres `char_length` counts. */
export function charLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Cuts `text` to at most `max` code points, at a word boundary when one is near. */
export function truncateChars(text: string, max: number): string {
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  const cut = chars.slice(0, max).join("");
  const space = cut.lastIndexOf(" ");
  return (space > max * 0.6 ? cut.slice(0, space) : cut).trimEnd();
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function invalid(field: string, message: string): HttpError {
  return new HttpError(400, "invalid_input", `${field}: ${message}`);
}
