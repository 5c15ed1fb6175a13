-- public.generation_jobs: one row per request. The row is the job, its status and its result (contract).
--
-- Clients insert rows through PostgREST under RLS (grants and policies: 20261125000500). Every request bound is
-- checked by the `generation_jobs_prepare_request` trigger, whose errors name the field (SQLSTATE 22023, message
-- `<field>: …`); the same trigger resolves the style preset into the columns the worker uses. State invariants
-- are named CHECK constraints; legal status transitions are enforced by `generation_jobs_guard_transition`.
--
-- Status (contract):
--   queued     waiting for a worker (run_after may delay it: retry backoff)
--   running    claimed by one worker (locked_by) holding a lease (lease_expires_at)
--   succeeded  image stored at result_path in bucket generated-designs (final)
--   failed     permanent error or max_attempts reached (final; an admin may requeue)
--   canceled   canceled by its owner or an admin (final; an admin may requeue)

create table public.generation_jobs (
  -- identity
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  client_request_id text,

  -- request: the only columns a client may write (column-level insert grant)
  prompt text not null,
  expanded_prompt text,
  negative_prompt text,
  style text not null default 'none' references public.generation_styles (id) on update cascade,
  variant text references public.generation_variants (id) on update cascade,
  width integer not null default 1024,
  height integer not null default 1024,
  steps integer,
  true_cfg_scale real,
  seed bigint,
  init_image_path text,
  franchise text,
  metadata jsonb not null default '{}'::jsonb,

  -- resolved at insert from the style preset and queue.franchise_loras: exactly what the model gets
  resolved_prompt text,
  lora text,
  lora_scale real,

  -- state
  status text not null default 'queued',
  progress real not null default 0,
  priority smallint not null default 0,
  attempts integer not null default 0,
  max_attempts integer not null default 3,
  run_after timestamptz not null default now(),
  cancel_requested_at timestamptz,
  locked_by text,
  lease_expires_at timestamptz,
  error_code text,
  error_message text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),

  -- result
  result_path text,
  result_bytes integer,
  backend text,
  backend_call_id text,
  gpu_seconds real,
  cost_usd numeric(12, 6),

  constraint status_is_valid check (status in ('queued', 'running', 'succeeded', 'failed', 'canceled')),
  constraint progress_between_0_and_1 check (progress >= 0 and progress <= 1),
  constraint max_attempts_in_range check (max_attempts between 1 and 25),
  constraint attempts_within_max check (attempts >= 0 and attempts <= max_attempts),
  -- a queued job must be claimable: claim_jobs adds one attempt (else one row would block every claim)
  constraint queued_job_has_an_attempt_left check (status <> 'queued' or attempts < max_attempts),
  constraint lease_only_while_running check (
    (status = 'running') = (locked_by is not null and lease_expires_at is not null)),
  constraint finished_at_only_when_final check (
    (status in ('succeeded', 'failed', 'canceled')) = (finished_at is not null)),
  constraint result_only_when_succeeded check ((status = 'succeeded') = (result_path is not null)),
  constraint result_path_is_owner_folder check (
    result_path is null or result_path = user_id::text || '/' || id::text || '.png'),
  constraint error_code_when_failed check (status <> 'failed' or error_code is not null),
  constraint resolved_request_is_complete check (
    variant is not null and steps is not null and true_cfg_scale is not null and seed is not null
    and resolved_prompt is not null and negative_prompt is not null),
  constraint lora_only_on_bf16 check (lora is null or variant = 'bf16')
);

comment on table public.generation_jobs is
  'Image-generation jobs. Clients insert and read their own rows; workers change them only via queue.* functions.';
comment on column public.generation_jobs.status is
  'queued | running | succeeded | failed | canceled (see migration 20261125000300 for each meaning)';
comment on column public.generation_jobs.priority is 'Higher runs first. Admin-only.';
comment on column public.generation_jobs.run_after is 'Not claimed before this time (retry backoff).';
comment on column public.generation_jobs.result_path is
  'Object key <user_id>/<job_id>.png in storage bucket generated-designs; set when succeeded.';
comment on column public.generation_jobs.seed is 'Chosen at insert when the client gives none, so retries repeat it.';

-- ## Indexes
-- The claim path: only claimable rows, in claim order (queue.claim_jobs orders by exactly these columns).
create index generation_jobs_claimable_idx on public.generation_jobs (priority desc, run_after, created_at)
  where status = 'queued';
-- Running rows for the reaper and lease renewals; lease_expires_at is deliberately not indexed so that
-- lease renewals and progress writes stay HOT updates.
create index generation_jobs_running_idx on public.generation_jobs (locked_by) where status = 'running';
-- A user's own jobs (RLS reads, hourly quota) and their active jobs (active quota).
create index generation_jobs_user_created_idx on public.generation_jobs (user_id, created_at desc);
create index generation_jobs_user_active_idx on public.generation_jobs (user_id)
  where status in ('queued', 'running');
-- Idempotency: one job per (user, client_request_id).
create unique index generation_jobs_client_request_id_key on public.generation_jobs (user_id, client_request_id)
  where client_request_id is not null;
-- Retention purge of old finished rows.
create index generation_jobs_finished_at_idx on public.generation_jobs (finished_at)
  where finished_at is not null;

-- A hot queue table: leave room for HOT updates and vacuum early and often.
alter table public.generation_jobs set (
  fillfactor = 70,
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 200,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_cost_delay = 0
);

-- ## Request validation and preset resolution
create function public.generation_jobs_prepare_request()
returns trigger
language plpgsql
security definer          -- reads storage.objects to check init_image_path, whatever the caller's grants
set search_path = ''
as $$
declare
  v_style public.generation_styles;
  v_variant public.generation_variants;
  v_lora queue.franchise_loras;
  v_len integer;
begin
  -- prompt
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
  if new.expanded_prompt is not null and length(new.expanded_prompt) > 4000 then
    raise exception using errcode = '22023', column = 'expanded_prompt',
      message = format('expanded_prompt: must be at most 4000 characters (got %s)', length(new.expanded_prompt));
  end if;
  if new.negative_prompt is not null and length(new.negative_prompt) > 2000 then
    raise exception using errcode = '22023', column = 'negative_prompt',
      message = format('negative_prompt: must be at most 2000 characters (got %s)', length(new.negative_prompt));
  end if;

  -- size
  if new.width is null or new.width < 256 or new.width > 2048 or new.width % 16 <> 0 then
    raise exception using errcode = '22023', column = 'width',
      message = format('width: must be a multiple of 16 between 256 and 2048 (got %s)', coalesce(new.width::text, 'null'));
  end if;
  if new.height is null or new.height < 256 or new.height > 2048 or new.height % 16 <> 0 then
    raise exception using errcode = '22023', column = 'height',
      message = format('height: must be a multiple of 16 between 256 and 2048 (got %s)', coalesce(new.height::text, 'null'));
  end if;

  -- sampling
  if new.steps is not null and (new.steps < 1 or new.steps > 100) then
    raise exception using errcode = '22023', column = 'steps',
      message = format('steps: must be between 1 and 100 (got %s)', new.steps);
  end if;
  if new.true_cfg_scale is not null
     and (new.true_cfg_scale = 'NaN'::real or new.true_cfg_scale < 1 or new.true_cfg_scale > 20) then
    raise exception using errcode = '22023', column = 'true_cfg_scale',
      message = format('true_cfg_scale: must be between 1 and 20 (got %s)', new.true_cfg_scale);
  end if;
  if new.seed is not null and (new.seed < 0 or new.seed > 4294967295) then
    raise exception using errcode = '22023', column = 'seed',
      message = format('seed: must be between 0 and 4294967295 (got %s)', new.seed);
  end if;

  -- idempotency key
  if new.client_request_id is not null and new.client_request_id !~ '^[A-Za-z0-9._:-]{1,128}$' then
    raise exception using errcode = '22023', column = 'client_request_id',
      message = 'client_request_id: must be 1 to 128 characters of A-Z a-z 0-9 . _ : -';
  end if;

  -- metadata: a small JSON object (product id, colour, size…)
  if new.metadata is null or jsonb_typeof(new.metadata) <> 'object' then
    raise exception using errcode = '22023', column = 'metadata',
      message = format('metadata: must be a JSON object (got %s)', coalesce(jsonb_typeof(new.metadata), 'null'));
  end if;
  if octet_length(new.metadata::text) > 4096 then
    raise exception using errcode = '22023', column = 'metadata',
      message = format('metadata: must be at most 4096 bytes as JSON (got %s)', octet_length(new.metadata::text));
  end if;

  -- init image: an object the owner uploaded to their own folder of bucket generation-inputs
  if new.init_image_path is not null then
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

  -- franchise: an enabled LoRA for it routes the job to bf16 (Nunchaku cannot apply custom LoRAs)
  if new.franchise is not null then
    if length(btrim(new.franchise)) not between 1 and 64 or new.franchise ~ '[[:cntrl:]]' then
      raise exception using errcode = '22023', column = 'franchise',
        message = 'franchise: must be 1 to 64 characters without control characters';
    end if;
    select * into v_lora from queue.franchise_loras f
     where f.franchise = lower(btrim(new.franchise)) and f.enabled;
  end if;

  -- style and variant
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
  if not found or (not v_variant.enabled and v_lora.lora is null and tg_op = 'INSERT'
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
  if tg_op = 'INSERT' then
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
  end if;
  return new;
end;
$$;

create trigger generation_jobs_prepare_request
  before insert or update of prompt, expanded_prompt, negative_prompt, style, variant, width, height, steps,
    true_cfg_scale, seed, init_image_path, franchise, metadata, client_request_id
  on public.generation_jobs
  for each row execute function public.generation_jobs_prepare_request();

-- ## Legal status transitions (the state machine; docs/architecture.md draws it)
create function public.generation_jobs_guard_transition()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status is distinct from old.status and not (
       (old.status = 'queued' and new.status in ('running', 'canceled'))
    or (old.status = 'running' and new.status in ('succeeded', 'failed', 'queued', 'canceled'))
    or (old.status in ('failed', 'canceled', 'succeeded') and new.status = 'queued')
  ) then
    raise exception using errcode = '23514', column = 'status',
      message = format('status: illegal transition from %s to %s for job %s', old.status, new.status, old.id);
  end if;
  new.updated_at := now();
  return new;
end;
$$;

create trigger generation_jobs_guard_transition
  before update on public.generation_jobs
  for each row execute function public.generation_jobs_guard_transition();
