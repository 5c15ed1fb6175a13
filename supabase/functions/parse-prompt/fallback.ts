/**
 * The deterministic expansion: what parse-prompt answers without an LLM (no key, or the LLM failed).
 *
 * Keyword rules only, no randomness: the same prompt always gives the same answer. The style's own prompt
 * template is applied by the database from `public.generation_styles` (`"watercolor painting of {prompt}, soft
 * washes…"`), so the expansion is a comma-separated phrase about the subject and the print, never the style.
 */
import { DEFAULT_STYLE, type StyleId } from "../_shared/styles.ts";
import {
  type Expansion,
  MAX_EXPANDED_PROMPT_CHARS,
  MAX_TAG_CHARS,
  MAX_TAGS,
  MAX_TITLE_CHARS,
  type ParsePromptInput,
  truncateChars,
} from "./contract.ts";

/** Words and phrases that ask for a style. A phrase scores one point per word it has. */
export const STYLE_KEYWORDS: Readonly<Record<Exclude<StyleId, "none">, readonly string[]>> = {
  "anime": [
    "anime",
    "manga",
    "chibi",
    "kawaii",
    "cel shaded",
    "cel shading",
    "shonen",
    "shojo",
    "waifu",
    "mecha",
  ],
  "realistic": [
    "realistic",
    "photorealistic",
    "hyperrealistic",
    "hyper realistic",
    "photo",
    "photograph",
    "photography",
    "lifelike",
    "cinematic",
    "dslr",
  ],
  "illustration": [
    "illustration",
    "illustrated",
    "drawing",
    "hand drawn",
    "sketch",
    "cartoon",
    "comic",
    "comics",
    "vector",
    "line art",
    "doodle",
    "storybook",
    "flat design",
  ],
  "pixel-art": [
    "pixel",
    "pixels",
    "pixel art",
    "pixelated",
    "8 bit",
    "16 bit",
    "sprite",
    "retro game",
    "retro gaming",
  ],
  "watercolor": [
    "watercolor",
    "watercolour",
    "watercolors",
    "watercolours",
    "aquarelle",
    "ink wash",
    "gouache",
  ],
  "vintage-poster": [
    "vintage",
    "poster",
    "retro poster",
    "art deco",
    "travel poster",
    "propaganda",
    "mid century",
    "screen print",
    "screenprint",
    "1950s",
    "1960s",
    "1970s",
  ],
};

/** A franchise the fallback recognises, with the names that reveal it and the style it implies. */
export interface Franchise {
  name: string;
  aliases: readonly string[];
  style?: StyleId;
}

/** A short list of franchises customers ask for most; the LLM recognises many more. */
export const FRANCHISES: readonly Franchise[] = [
  { name: "Pokémon", aliases: ["pokemon", "pikachu", "charizard", "eevee"], style: "anime" },
  { name: "Dragon Ball", aliases: ["dragon ball", "dragonball", "goku", "vegeta"], style: "anime" },
  { name: "Naruto", aliases: ["naruto", "sasuke", "kakashi"], style: "anime" },
  { name: "One Piece", aliases: ["one piece", "luffy", "straw hat pirates"], style: "anime" },
  { name: "Sailor Moon", aliases: ["sailor moon"], style: "anime" },
  { name: "Studio Ghibli", aliases: ["ghibli", "totoro", "spirited away"], style: "anime" },
  {
    name: "Demon Slayer",
    aliases: ["demon slayer", "kimetsu", "tanjiro", "nezuko"],
    style: "anime",
  },
  { name: "Attack on Titan", aliases: ["attack on titan", "shingeki"], style: "anime" },
  { name: "Jujutsu Kaisen", aliases: ["jujutsu kaisen", "jujutsu"], style: "anime" },
  { name: "Evangelion", aliases: ["evangelion"], style: "anime" },
  { name: "Super Mario", aliases: ["super mario", "mario kart", "mario bros", "luigi"] },
  { name: "The Legend of Zelda", aliases: ["zelda", "hyrule"] },
  { name: "Star Wars", aliases: ["star wars", "darth vader", "jedi", "yoda", "mandalorian"] },
  { name: "Marvel", aliases: ["marvel", "avengers", "spider man", "spiderman", "iron man"] },
];

const STOPWORDS = new Set(
  ("a an and are as at be but by for from in into is it its me my of on or our please so that the " +
    "their this to with without your style styled design designs image picture make create draw " +
    "generate give want like some very").split(" "),
);

const INSTRUCTION_PREFIX =
  /^(?:(?:please|can you|could you|i want|i would like|i'd like|give me|make me|make|create|draw|paint|generate|design|show me)\s+)+/i;
const LEADING_ARTICLE = /^(?:a|an|the|some)\s+/i;
const SMALL_TITLE_WORDS = new Set([
  "a",
  "an",
  "and",
  "as",
  "at",
  "by",
  "for",
  "in",
  "of",
  "on",
  "or",
  "the",
  "to",
  "with",
]);
const TITLE_MAX_WORDS = 6;

/** The fallback answer for a validated request. */
export function fallbackExpansion(input: ParsePromptInput): Expansion {
  const franchise = detectFranchise(input.prompt);
  const style = detectStyle(input.prompt) ?? franchise?.style ?? DEFAULT_STYLE;
  return {
    expandedPrompt: expandPrompt(input),
    style,
    franchise: franchise?.name ?? null,
    title: titleFromPrompt(input.prompt),
    tags: tagsFor(input.prompt, style, franchise?.name ?? null),
  };
}

/** The style the prompt asks for (highest keyword score; ties go to the earlier style), or null. */
export function detectStyle(prompt: string): StyleId | null {
  const text = normalize(prompt);
  let best: StyleId | null = null;
  let bestScore = 0;
  for (
    const [style, keywords] of Object.entries(STYLE_KEYWORDS) as [StyleId, readonly string[]][]
  ) {
    let score = 0;
    for (const keyword of keywords) {
      if (containsPhrase(text, keyword)) score += keyword.split(" ").length;
    }
    if (score > bestScore) {
      best = style;
      bestScore = score;
    }
  }
  return best;
}

/** The first franchise of {@link FRANCHISES} the prompt names, or null. */
export function detectFranchise(prompt: string): Franchise | null {
  const text = normalize(prompt);
  return FRANCHISES.find((f) => f.aliases.some((alias) => containsPhrase(text, alias))) ?? null;
}

/** A short Title Case title from the prompt's first clause ("Untitled Design" when nothing is left). */
export function titleFromPrompt(prompt: string): string {
  const clause = prompt.split(/[.,;:!?\n]|\s[-–—]\s/u)[0].trim()
    .replace(INSTRUCTION_PREFIX, "")
    .replace(LEADING_ARTICLE, "");
  const words = clause.split(/\s+/u).filter((w) => w !== "").slice(0, TITLE_MAX_WORDS);
  if (words.length === 0) return "Untitled Design";
  const title = words
    .map((word, i) => {
      const lower = word.toLowerCase();
      if (i > 0 && SMALL_TITLE_WORDS.has(lower)) return lower;
      return word.charAt(0).toUpperCase() + word.slice(1);
    })
    .join(" ");
  return truncateChars(title, MAX_TITLE_CHARS);
}

/** Tags: the style, the franchise, then the prompt's content words, lower case and unique. */
export function tagsFor(prompt: string, style: StyleId, franchise: string | null): string[] {
  const tags: string[] = [];
  const add = (tag: string) => {
    const clean = truncateChars(tag.trim().toLowerCase(), MAX_TAG_CHARS);
    if (clean !== "" && !tags.includes(clean) && tags.length < MAX_TAGS) tags.push(clean);
  };
  if (style !== DEFAULT_STYLE) add(style);
  if (franchise !== null) add(normalize(franchise).trim());
  for (const word of normalize(prompt).split(" ")) {
    if (word.length >= 3 && !STOPWORDS.has(word) && !/^\d+$/.test(word)) add(word);
  }
  return tags;
}

function expandPrompt({ prompt, product }: ParsePromptInput): string {
  const subject = prompt.replace(/\s+/gu, " ").replace(/[\s.,;:!]+$/u, "");
  const surface = [product?.color, product?.kind].filter((part) => part !== undefined).join(" ");
  const suffix = ", centered composition, clean edges, crisp details, balanced colors, " +
    (surface === ""
      ? "print-ready artwork for merchandise"
      : `print-ready artwork for a ${surface}`);
  const budget = MAX_EXPANDED_PROMPT_CHARS - Array.from(suffix).length;
  return truncateChars(subject, budget) + suffix;
}

/** Lower case, accents stripped, every run of non-letters/digits a single space, padded with spaces. */
function normalize(text: string): string {
  const words = text.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ").trim();
  return ` ${words} `;
}

function containsPhrase(normalizedText: string, phrase: string): boolean {
  return normalizedText.includes(normalize(phrase));
}
