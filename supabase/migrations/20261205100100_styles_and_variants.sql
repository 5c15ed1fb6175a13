-- Style presets and model variants: admin-tuned with SQL, readable by everyone (the UI lists styles).
--
-- A job names a style; at insert the database resolves the style (and the variant's defaults) into the job's
-- variant, steps, true_cfg_scale, negative_prompt and resolved_prompt, so the worker and the UI see exactly what
-- is generated. Change a preset with `update public.generation_styles …`: no deploy needed.
--
-- Lightning variants run without true CFG. lightning-4, lightning-8, edit (Qwen-Image-Edit-2509 Lightning) and
-- bf16 (the 8-step Lightning LoRA fused in) are CFG-distilled: upstream runs them at true_cfg_scale = 1.0
-- (Nunchaku's examples/v1/qwen-image-lightning.py and qwen-image-edit-2509-lightning.py,
-- https://github.com/nunchaku-tech/nunchaku/tree/v1.1.0/examples/v1); above 1 the pipeline runs a second,
-- negative-prompt pass per step (twice the GPU time) and over-saturates the image. So each variant has a
-- max_true_cfg_scale (1 for the Lightning variants, 20 for base and tiny): a request above it is rejected by the
-- request trigger (generation_jobs), a style preset is capped to it, a style may not default to a variant with a
-- lower maximum than its own true_cfg_scale, and a variant's maximum may not drop below such a style. The
-- worker's pipeline applies the same rule to requests that do not come through this table.

-- ## Variants
create table public.generation_variants (
  id text primary key,
  label text not null,
  description text not null default '',
  default_steps integer not null,
  default_true_cfg_scale real not null,
  enabled boolean not null default true,
  max_true_cfg_scale real not null default 20,
  constraint variant_id_is_slug check (id ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
  constraint default_steps_in_range check (default_steps between 1 and 100),
  constraint default_true_cfg_scale_in_range check (default_true_cfg_scale between 1 and 20),
  constraint max_true_cfg_scale_in_range check (max_true_cfg_scale between 1 and 20),
  constraint default_true_cfg_scale_within_max check (default_true_cfg_scale <= max_true_cfg_scale)
);
comment on table public.generation_variants is
  'Model variants a job may ask for; `enabled = false` hides one from clients (tiny is for smoke tests).';
comment on column public.generation_variants.max_true_cfg_scale is
  'Largest true_cfg_scale a job on this variant may use: 1 for CFG-distilled (Lightning) variants, which run '
  'without true CFG; requests above it are rejected, style presets are capped to it.';

insert into public.generation_variants
  (id, label, description, default_steps, default_true_cfg_scale, enabled, max_true_cfg_scale) values
  ('lightning-8', 'Fast (8 steps)', 'Qwen-Image Lightning 8-step, Nunchaku 4-bit', 8, 1.0, true, 1),
  ('lightning-4', 'Fastest (4 steps)', 'Qwen-Image Lightning 4-step, Nunchaku 4-bit', 4, 1.0, true, 1),
  ('base', 'Best quality', 'Qwen-Image base, 50 steps with true CFG, Nunchaku 4-bit', 50, 4.0, true, 20),
  ('edit', 'Edit an image', 'Qwen-Image-Edit-2509 Lightning, Nunchaku 4-bit; needs init_image_path', 8, 1.0, true, 1),
  ('bf16', 'Full precision', 'Qwen-Image in bf16 (80 GB cards); the only variant that can apply a LoRA', 8, 1.0, false, 1),
  ('tiny', 'Smoke test', 'Tiny random weights on CPU: proves the code path, outputs noise', 4, 1.0, false, 20);

-- ## Styles
create table public.generation_styles (
  id text primary key,
  label text not null,
  prompt_template text not null default '{prompt}',
  negative_prompt text not null default '',
  -- on update cascade: an admin may rename a variant that styles default to (the jobs' variant cascades too);
  -- the column default names lightning-8 literally, so after renaming that one, give new styles a default_variant
  default_variant text not null default 'lightning-8' references public.generation_variants (id) on update cascade,
  steps integer,
  true_cfg_scale real,
  sort_order integer not null default 100,
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint style_id_is_slug check (id ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
  constraint prompt_template_contains_placeholder check (position('{prompt}' in prompt_template) > 0),
  constraint steps_in_range check (steps is null or steps between 1 and 100),
  constraint true_cfg_scale_in_range check (true_cfg_scale is null or true_cfg_scale between 1 and 20)
);
comment on table public.generation_styles is
  'Style presets. prompt_template wraps the user prompt ({prompt}); null steps/true_cfg_scale use the variant''s.';

insert into public.generation_styles (id, label, prompt_template, negative_prompt, sort_order) values
  ('none', 'None', '{prompt}', '', 0),
  ('anime', 'Anime',
   'anime style illustration of {prompt}, cel shading, vibrant colors, clean line art, detailed, high quality',
   'photorealistic, 3d render, blurry, low quality, watermark, text artifacts', 10),
  ('realistic', 'Realistic',
   'photorealistic image of {prompt}, natural lighting, sharp focus, high detail, 8k photograph',
   'cartoon, anime, illustration, painting, blurry, low quality, watermark', 20),
  ('illustration', 'Illustration',
   'digital illustration of {prompt}, bold shapes, rich colors, print-ready artwork, clean composition',
   'photo, blurry, low quality, watermark, jpeg artifacts', 30),
  ('pixel-art', 'Pixel art',
   'pixel art of {prompt}, 16-bit retro game style, crisp pixels, limited palette',
   'blurry, smooth gradients, photorealistic, anti-aliasing, low quality', 40),
  ('watercolor', 'Watercolor',
   'watercolor painting of {prompt}, soft washes, paper texture, delicate brush strokes',
   'photo, 3d render, harsh lines, low quality, watermark', 50),
  ('vintage-poster', 'Vintage poster',
   'vintage poster design of {prompt}, retro typography-free layout, screen print texture, limited colors',
   'photo, modern, blurry, low quality, watermark', 60);

-- ## A style's true_cfg_scale fits its default variant, and a variant's maximum fits its styles
create function public.generation_styles_check_true_cfg_scale()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_max real;
begin
  if new.true_cfg_scale is null then
    return new;
  end if;
  select v.max_true_cfg_scale into v_max from public.generation_variants v where v.id = new.default_variant;
  if v_max is not null and new.true_cfg_scale > v_max then
    raise exception using errcode = '22023', column = 'true_cfg_scale',
      message = format('true_cfg_scale: variant %s runs without true CFG and accepts at most %s (got %s)',
                       new.default_variant, v_max, new.true_cfg_scale),
      hint = 'Leave true_cfg_scale empty (the variant''s default) or pick a default_variant with true CFG (base).';
  end if;
  return new;
end;
$$;
comment on function public.generation_styles_check_true_cfg_scale() is
  'Trigger: a style''s true_cfg_scale is at most its default variant''s max_true_cfg_scale.';

create function public.generation_variants_check_true_cfg_scale()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_style public.generation_styles;
begin
  select * into v_style from public.generation_styles s
   where s.default_variant = new.id and s.true_cfg_scale > new.max_true_cfg_scale
   order by s.id limit 1;
  if found then
    raise exception using errcode = '22023', column = 'max_true_cfg_scale',
      message = format('max_true_cfg_scale: style %s defaults to variant %s with true_cfg_scale %s, above %s',
                       v_style.id, new.id, v_style.true_cfg_scale, new.max_true_cfg_scale),
      hint = 'Lower that style''s true_cfg_scale (or clear it) first.';
  end if;
  return new;
end;
$$;
comment on function public.generation_variants_check_true_cfg_scale() is
  'Trigger: a variant''s max_true_cfg_scale stays at or above every style that defaults to it.';

-- trigger functions: nobody calls them directly
revoke all on function public.generation_styles_check_true_cfg_scale(),
                       public.generation_variants_check_true_cfg_scale()
  from public, anon, authenticated, service_role;

create trigger generation_styles_check_true_cfg_scale
  before insert or update of true_cfg_scale, default_variant on public.generation_styles
  for each row execute function public.generation_styles_check_true_cfg_scale();

create trigger generation_variants_check_true_cfg_scale
  before update of max_true_cfg_scale on public.generation_variants
  for each row execute function public.generation_variants_check_true_cfg_scale();

-- ## Who reads the catalogue: everyone reads the enabled rows; only admins (SQL) change it
alter table public.generation_variants enable row level security;
alter table public.generation_styles enable row level security;

create policy "everyone reads enabled variants" on public.generation_variants
  for select to anon, authenticated using (enabled);
create policy "everyone reads enabled styles" on public.generation_styles
  for select to anon, authenticated using (enabled);

revoke all on table public.generation_variants, public.generation_styles from anon, authenticated, service_role;
grant select on public.generation_variants, public.generation_styles to anon, authenticated, service_role;
grant select on public.generation_variants, public.generation_styles to tenkaigen_worker;

-- ## Franchise LoRAs (admin only, schema queue)
-- Nunchaku's 4-bit Qwen-Image cannot apply custom LoRAs, so a job whose franchise has an enabled row here is
-- routed at insert to the bf16 variant with that LoRA; a franchise without a row is generated like any other job.
create table queue.franchise_loras (
  franchise text primary key,
  lora text not null,
  scale real not null default 1.0,
  enabled boolean not null default true,
  note text,
  updated_at timestamptz not null default now(),
  constraint franchise_is_normalized check (franchise = lower(btrim(franchise)) and length(franchise) between 1 and 64),
  constraint lora_is_a_reference check (length(lora) between 1 and 512),
  constraint scale_in_range check (scale > 0 and scale <= 2)
);
comment on table queue.franchise_loras is
  'Admin: franchise (lower case, as parse-prompt names it: "pokémon") -> LoRA (a Hugging Face "org/repo" or "org/repo:file.safetensors", or a path on the weights '
  'volume) and its scale. Jobs naming an enabled franchise run on variant bf16 with it.';
revoke all on table queue.franchise_loras from public, anon, authenticated, service_role;
