-- Lightning variants run without true CFG: a request, a style preset or a variant default may not give them a
-- true_cfg_scale above 1.
--
-- Why: lightning-4, lightning-8, edit (Qwen-Image-Edit-2509 Lightning) and bf16 (the 8-step Lightning LoRA fused
-- in) are CFG-distilled. Upstream runs them at true_cfg_scale = 1.0 (Nunchaku's examples/v1/qwen-image-lightning.py
-- and qwen-image-edit-2509-lightning.py, https://github.com/nunchaku-tech/nunchaku/tree/v1.1.0/examples/v1); above 1
-- the pipeline runs a second, negative-prompt pass per step (twice the GPU time) and over-saturates the image. The
-- request trigger accepted 1..20 for every variant, so such a job was paid for twice and came out wrong.
--
-- What changes:
--   * public.generation_variants gets max_true_cfg_scale (1..20, at least default_true_cfg_scale): 1 for the
--     Lightning variants, 20 for base and tiny. The worker's pipeline has the same rule (modal_app/pipeline.py
--     LIGHTNING_MAX_TRUE_CFG_SCALE) for requests that do not come through this table.
--   * public.generation_jobs_prepare_request (as 20261125001600 left it, plus this check): a request's own
--     true_cfg_scale above its resolved variant's maximum is rejected with SQLSTATE 22023 and column
--     true_cfg_scale, like every other validation error. A style's preset value is capped to the variant's maximum
--     instead: the style was checked against its own default variant (below), and a client who picked another
--     variant did not ask for that CFG. An admin's UPDATE that changes variant or true_cfg_scale is checked too.
--   * public.generation_styles_check_true_cfg_scale (trigger): a style's true_cfg_scale may not exceed its
--     default variant's maximum (insert, or update of true_cfg_scale / default_variant).
--   * public.generation_variants_check_true_cfg_scale (trigger): lowering a variant's maximum below a style that
--     defaults to it is rejected, naming the style.
-- Jobs already queued keep their values (none can exist: the schema has never been deployed).
--
-- Privileges (the discipline of 20261125001700): the new column is covered by the table-level SELECT the API roles
-- already have on generation_variants (nothing else is granted on it). The two new trigger functions are revoked
-- from public, anon, authenticated and service_role and granted to nobody: only their triggers run them.
-- generation_jobs_prepare_request keeps its grants and owner (`create or replace`).

-- ## Variants: the largest true_cfg_scale each one accepts

alter table public.generation_variants
  add column max_true_cfg_scale real not null default 20,
  add constraint max_true_cfg_scale_in_range check (max_true_cfg_scale between 1 and 20),
  add constraint default_true_cfg_scale_within_max check (default_true_cfg_scale <= max_true_cfg_scale);

comment on column public.generation_variants.max_true_cfg_scale is
  'Largest true_cfg_scale a job on this variant may use: 1 for CFG-distilled (Lightning) variants, which run '
  'without true CFG; requests above it are rejected, style presets are capped to it.';

update public.generation_variants set max_true_cfg_scale = 1
 where id in ('lightning-4', 'lightning-8', 'edit', 'bf16');

-- ## Trigger functions: revoke first (20261125001700), then define; nobody is granted EXECUTE

create or replace function public.generation_styles_check_true_cfg_scale()
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
  'Trigger: a style''s true_cfg_scale is at most its default variant''s max_true_cfg_scale (20261205000300).';

create or replace function public.generation_variants_check_true_cfg_scale()
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
  'Trigger: a variant''s max_true_cfg_scale stays at or above every style that defaults to it (20261205000300).';

revoke all on function public.generation_styles_check_true_cfg_scale(),
                       public.generation_variants_check_true_cfg_scale()
  from public, anon, authenticated, service_role;

create trigger generation_styles_check_true_cfg_scale
  before insert or update of true_cfg_scale, default_variant on public.generation_styles
  for each row execute function public.generation_styles_check_true_cfg_scale();

create trigger generation_variants_check_true_cfg_scale
  before update of max_true_cfg_scale on public.generation_variants
  for each row execute function public.generation_variants_check_true_cfg_scale();

-- ## The request trigger: 20261125001600's function with the variant's CFG limit

create or replace function public.generation_jobs_prepare_request()
returns trigger
language plpgsql
security definer          -- reads storage.objects to check init_image_path, whatever the caller's grants
set search_path = ''
as $$
declare
  v_insert constant boolean := tg_op = 'INSERT';
  v_old public.generation_jobs;   -- all null on INSERT: every value counts as changed
  v_style public.generation_styles;
  v_variant public.generation_variants;
  v_lora queue.franchise_loras;
  v_len integer;
begin
  if not v_insert then
    v_old := old;
  end if;

  -- prompt
  if v_insert or new.prompt is distinct from v_old.prompt then
    if new.prompt is null or new.prompt !~ '[^[:space:]]' then
      raise exception using errcode = '22023', column = 'prompt',
        message = 'prompt: must not be empty',
        hint = 'Describe the design in 1 to 2000 characters.';
    end if;
    v_len := length(new.prompt);
    if v_len > 2000 then
      raise exception using errcode = '22023', column = 'prompt',
        message = format('prompt: must be at most 2000 characters (got %s)', v_len);
    end if;
  end if;
  if (v_insert or new.expanded_prompt is distinct from v_old.expanded_prompt)
     and new.expanded_prompt is not null and length(new.expanded_prompt) > 4000 then
    raise exception using errcode = '22023', column = 'expanded_prompt',
      message = format('expanded_prompt: must be at most 4000 characters (got %s)', length(new.expanded_prompt));
  end if;
  if (v_insert or new.negative_prompt is distinct from v_old.negative_prompt)
     and new.negative_prompt is not null and length(new.negative_prompt) > 2000 then
    raise exception using errcode = '22023', column = 'negative_prompt',
      message = format('negative_prompt: must be at most 2000 characters (got %s)', length(new.negative_prompt));
  end if;

  -- size
  if (v_insert or new.width is distinct from v_old.width)
     and (new.width is null or new.width < 256 or new.width > 2048 or new.width % 16 <> 0) then
    raise exception using errcode = '22023', column = 'width',
      message = format('width: must be a multiple of 16 between 256 and 2048 (got %s)', coalesce(new.width::text, 'null'));
  end if;
  if (v_insert or new.height is distinct from v_old.height)
     and (new.height is null or new.height < 256 or new.height > 2048 or new.height % 16 <> 0) then
    raise exception using errcode = '22023', column = 'height',
      message = format('height: must be a multiple of 16 between 256 and 2048 (got %s)', coalesce(new.height::text, 'null'));
  end if;

  -- sampling
  if (v_insert or new.steps is distinct from v_old.steps)
     and new.steps is not null and (new.steps < 1 or new.steps > 100) then
    raise exception using errcode = '22023', column = 'steps',
      message = format('steps: must be between 1 and 100 (got %s)', new.steps);
  end if;
  if (v_insert or new.true_cfg_scale is distinct from v_old.true_cfg_scale)
     and new.true_cfg_scale is not null
     and (new.true_cfg_scale = 'NaN'::real or new.true_cfg_scale < 1 or new.true_cfg_scale > 20) then
    raise exception using errcode = '22023', column = 'true_cfg_scale',
      message = format('true_cfg_scale: must be between 1 and 20 (got %s)', new.true_cfg_scale);
  end if;
  if (v_insert or new.seed is distinct from v_old.seed)
     and new.seed is not null and (new.seed < 0 or new.seed > 4294967295) then
    raise exception using errcode = '22023', column = 'seed',
      message = format('seed: must be between 0 and 4294967295 (got %s)', new.seed);
  end if;

  -- idempotency key
  if (v_insert or new.client_request_id is distinct from v_old.client_request_id)
     and new.client_request_id is not null and new.client_request_id !~ '^[A-Za-z0-9._:-]{1,128}$' then
    raise exception using errcode = '22023', column = 'client_request_id',
      message = 'client_request_id: must be 1 to 128 characters of A-Z a-z 0-9 . _ : -';
  end if;

  -- metadata: a small JSON object (product id, colour, size…)
  if v_insert or new.metadata is distinct from v_old.metadata then
    if new.metadata is null or jsonb_typeof(new.metadata) <> 'object' then
      raise exception using errcode = '22023', column = 'metadata',
        message = format('metadata: must be a JSON object (got %s)', coalesce(jsonb_typeof(new.metadata), 'null'));
    end if;
    if octet_length(new.metadata::text) > 4096 then
      raise exception using errcode = '22023', column = 'metadata',
        message = format('metadata: must be at most 4096 bytes as JSON (got %s)', octet_length(new.metadata::text));
    end if;
  end if;

  -- init image: an object the owner uploaded to their own folder of bucket generation-inputs. Checked when it is
  -- given (insert) or changed (an admin's edit); the owner may delete it later, which changes no job.
  if (v_insert or new.init_image_path is distinct from v_old.init_image_path) and new.init_image_path is not null then
    if new.init_image_path !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'
       or split_part(new.init_image_path, '/', 1) <> new.user_id::text then
      raise exception using errcode = '22023', column = 'init_image_path',
        message = 'init_image_path: must be <your user id>/<file name> in bucket generation-inputs',
        hint = 'Upload the image to generation-inputs/<user id>/ first, then pass its path.';
    end if;
    if not exists (select from storage.objects o
                   where o.bucket_id = 'generation-inputs' and o.name = new.init_image_path) then
      raise exception using errcode = '22023', column = 'init_image_path',
        message = format('init_image_path: no object %s in bucket generation-inputs', new.init_image_path),
        hint = 'Upload the image before inserting the job.';
    end if;
  end if;

  -- franchise: an enabled LoRA for it routes the job to bf16 (Nunchaku cannot apply custom LoRAs); looked up at
  -- insert only, so a mapping added or removed later changes new jobs, never existing ones
  if (v_insert or new.franchise is distinct from v_old.franchise) and new.franchise is not null then
    if length(btrim(new.franchise)) not between 1 and 64 or new.franchise ~ '[[:cntrl:]]' then
      raise exception using errcode = '22023', column = 'franchise',
        message = 'franchise: must be 1 to 64 characters without control characters';
    end if;
    if v_insert then
      select * into v_lora from queue.franchise_loras f
       where f.franchise = lower(btrim(new.franchise)) and f.enabled;
    end if;
  end if;

  if not v_insert then
    -- an edit of an existing job: the foreign keys check a new style or variant; nothing is derived
    if (new.variant is distinct from v_old.variant or new.init_image_path is distinct from v_old.init_image_path)
       and new.variant = 'edit' and new.init_image_path is null then
      raise exception using errcode = '22023', column = 'init_image_path',
        message = 'init_image_path: required for variant edit';
    end if;
    if new.variant is distinct from v_old.variant or new.true_cfg_scale is distinct from v_old.true_cfg_scale then
      select * into v_variant from public.generation_variants v where v.id = new.variant;
      if found and new.true_cfg_scale > v_variant.max_true_cfg_scale then
        raise exception using errcode = '22023', column = 'true_cfg_scale',
          message = format('true_cfg_scale: variant %s runs without true CFG and accepts at most %s (got %s)',
                           new.variant, v_variant.max_true_cfg_scale, new.true_cfg_scale);
      end if;
    end if;
    return new;
  end if;

  -- style and variant (insert only)
  select * into v_style from public.generation_styles s where s.id = new.style and s.enabled;
  if not found then
    raise exception using errcode = '22023', column = 'style',
      message = format('style: unknown style %L', new.style),
      hint = 'Use an id from public.generation_styles.';
  end if;
  new.variant := case when v_lora.lora is not null then 'bf16'
                      else coalesce(new.variant,
                                    case when new.init_image_path is not null then 'edit' end,
                                    v_style.default_variant) end;
  select * into v_variant from public.generation_variants v where v.id = new.variant;
  if not found or (not v_variant.enabled and v_lora.lora is null
                   and current_setting('role', true) in ('anon', 'authenticated')) then
    raise exception using errcode = '22023', column = 'variant',
      message = format('variant: unknown variant %L', new.variant),
      hint = 'Use an enabled id from public.generation_variants, or leave it empty for the style''s default.';
  end if;
  if new.variant = 'edit' and new.init_image_path is null then
    raise exception using errcode = '22023', column = 'init_image_path',
      message = 'init_image_path: required for variant edit';
  end if;

  -- CFG-distilled (Lightning) variants run without true CFG: the request's own value may not exceed the variant's
  -- maximum; a style's preset value is capped to it (20261205000300)
  if new.true_cfg_scale > v_variant.max_true_cfg_scale then
    raise exception using errcode = '22023', column = 'true_cfg_scale',
      message = format('true_cfg_scale: variant %s runs without true CFG and accepts at most %s (got %s)',
                       new.variant, v_variant.max_true_cfg_scale, new.true_cfg_scale),
      hint = case when v_lora.lora is not null
                  then 'This franchise''s LoRA runs on variant bf16 (Lightning): leave true_cfg_scale empty or 1.'
                  else 'Leave true_cfg_scale empty (the variant''s default), or use variant base for true CFG.' end;
  end if;

  -- resolve the preset into what the worker runs
  new.steps := coalesce(new.steps, v_style.steps, v_variant.default_steps);
  new.true_cfg_scale := coalesce(new.true_cfg_scale,
                                 -- not least(): it ignores a null and would turn "no preset" into the maximum
                                 case when v_style.true_cfg_scale > v_variant.max_true_cfg_scale
                                      then v_variant.max_true_cfg_scale else v_style.true_cfg_scale end,
                                 v_variant.default_true_cfg_scale);
  new.negative_prompt := coalesce(new.negative_prompt, v_style.negative_prompt);
  new.seed := coalesce(new.seed, floor(random() * 4294967296)::bigint);
  new.lora := v_lora.lora;
  new.lora_scale := v_lora.scale;
  -- a blank expanded prompt counts as none
  new.resolved_prompt := replace(v_style.prompt_template, '{prompt}',
                                 btrim(coalesce(nullif(btrim(new.expanded_prompt, E' \t\r\n'), ''), new.prompt),
                                       E' \t\r\n'));
  return new;
end;
$$;

comment on function public.generation_jobs_prepare_request() is
  'Trigger: validates a request (errors name the field, SQLSTATE 22023) and resolves its style preset and '
  'franchise LoRA at insert; on UPDATE only checks the request values the statement changes and derives nothing '
  '(20261125001600); a true_cfg_scale above the variant''s max_true_cfg_scale is rejected, a style''s is capped '
  '(20261205000300).';
