-- The request trigger resolves a job once, at insert; an UPDATE of an existing job only checks the values it changes.
--
-- Why: `generation_jobs_prepare_request` (20261125000300) also fired on `update of … style, variant, …` and ran
-- its insert-time logic again. The style and variant foreign keys are `on update cascade`, so an admin renaming
-- a style id (a catalogue change) updates every job that names it, and each of those updates re-ran the trigger:
--   * it derived the variant again: a job whose franchise gained a LoRA in queue.franchise_loras after the job
--     was inserted was moved to bf16 (without its LoRA, which only an insert sets), and the recorded variant of
--     finished jobs was rewritten, so the history no longer said what ran;
--   * it checked again that the init image still exists and that the style is enabled, so a user deleting their
--     own input image (the storage policies allow it) or a disabled style made the admin's rename fail, with the
--     error raised from inside the cascade.
-- The UPDATE path was meant for an admin's direct edit of a job's request in the SQL editor: the same bounds and
-- the same errors naming the field as for a client's insert. That is sound for the values the worker reads as they
-- are (negative_prompt, width, height, steps, true_cfg_scale, seed, variant) and for the rest of the request, but
-- only for the values the edit changes, and without deriving anything: a job keeps what it was resolved to.
--
-- What changes:
--   * INSERT: unchanged (every check, variant routing by franchise, preset resolution).
--   * UPDATE: each check runs only when its column's value changes (`is distinct from` the old row), with the
--     insert's bounds and messages. Nothing is derived or re-resolved: variant, lora, lora_scale, steps,
--     true_cfg_scale, negative_prompt, seed and resolved_prompt keep their values unless the statement sets them
--     (so editing prompt, expanded_prompt, style or franchise records the new value but does not change what the
--     worker runs; cancel and insert a new job for that). A changed init_image_path must still be the owner's and
--     exist (the admin is pointing the job at it now); an unchanged one is not looked up again. The enabled flags
--     of styles and variants only hide them from clients' inserts and are not checked on UPDATE; the foreign keys
--     still require that a new style or variant exists. A job on variant edit still needs an init image.
--   * The trigger no longer fires on `update of style`: nothing is checked for a style on UPDATE, so a style
--     rename cascades without running it. A variant rename still fires it and finds nothing changed to check.
-- Grants and owner of the function are kept (`create or replace`); the trigger is dropped and created again with
-- the same name, so it still runs before generation_jobs_quota (BEFORE triggers run in name order).

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

  -- resolve the preset into what the worker runs
  new.steps := coalesce(new.steps, v_style.steps, v_variant.default_steps);
  new.true_cfg_scale := coalesce(new.true_cfg_scale, v_style.true_cfg_scale, v_variant.default_true_cfg_scale);
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
  '(20261125001600).';

drop trigger generation_jobs_prepare_request on public.generation_jobs;
create trigger generation_jobs_prepare_request
  before insert or update of prompt, expanded_prompt, negative_prompt, variant, width, height, steps,
    true_cfg_scale, seed, init_image_path, franchise, metadata, client_request_id
  on public.generation_jobs
  for each row execute function public.generation_jobs_prepare_request();
