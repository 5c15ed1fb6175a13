-- public.generation_jobs: one row per request. The row is the job, its status and its result (contract).
--
-- Clients insert rows through PostgREST under RLS (grants and policies: the client API file). Every request bound
-- is checked by the `generation_jobs_prepare_request` trigger, whose errors name the field (SQLSTATE 22023,
-- message `<field>: …`); the same trigger resolves the style preset into the columns the worker uses. State
-- invariants are named CHECK constraints; legal status transitions are enforced by
-- `generation_jobs_guard_transition`.
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
  -- the fence of every worker write: claim_jobs numbers each claim of the job (1, 2, …) and never resets it,
  -- unlike attempts (requeue_job resets attempts, release_jobs gives one back), so a claim number names one run
  claims integer not null default 0,
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
  'queued | running | succeeded | failed | canceled (the generation_jobs migration explains each)';
comment on column public.generation_jobs.priority is 'Higher runs first. Admin-only.';
comment on column public.generation_jobs.run_after is 'Not claimed before this time (retry backoff).';
comment on column public.generation_jobs.result_path is
  'Object key <user_id>/<job_id>.png in storage bucket generated-designs; set when succeeded.';
comment on column public.generation_jobs.seed is 'Chosen at insert when the client gives none, so retries repeat it.';

-- ## Indexes
-- The claim path: queued rows only, in the total claim order (priority desc, run_after, created_at, id), exactly
-- the ORDER BY of queue.claim_jobs, so a claim reads it in order under its LIMIT with no sort. `id` breaks ties,
-- and ties are common: jobs inserted by one statement share created_at = now(), and release_jobs /
-- reap_expired_leases give run_after = now() to every job they give back in one call. Without it, tied rows would
-- be claimed in heap order, and public.generation_job_queue_position (which counts in this order) could tell a
-- client "1st" while a worker claimed a tied job first.
create index generation_jobs_claimable_idx on public.generation_jobs
  (priority desc, run_after, created_at, id)
  where status = 'queued';
comment on index public.generation_jobs_claimable_idx is
  'The claim path: queued rows only, in claim order (priority desc, run_after, created_at, id), exactly the '
  'ORDER BY of queue.claim_jobs and the order of public.generation_job_queue_position.';
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
-- INSERT: every check, variant routing by franchise, preset resolution.
-- UPDATE (an admin's direct edit of a job's request in the SQL editor): each check runs only when its column's
-- value changes (`is distinct from` the old row), with the insert's bounds and messages. Nothing is derived or
-- re-resolved: variant, lora, lora_scale, steps, true_cfg_scale, negative_prompt, seed and resolved_prompt keep
-- their values unless the statement sets them (so editing prompt, expanded_prompt, style or franchise records the
-- new value but does not change what the worker runs; cancel and insert a new job for that). Why: the style and
-- variant foreign keys are `on update cascade`, so an admin renaming a style or variant updates every job naming
-- it; re-running the insert logic there would move jobs to bf16 when their franchise gained a LoRA since, rewrite
-- the recorded variant of finished jobs, and fail the rename when a user had deleted their input image or the
-- style was disabled. A changed init_image_path must still be the owner's and exist; an unchanged one is not
-- looked up again. The enabled flags of styles and variants only hide them from clients' inserts. A job on
-- variant edit still needs an init image. The trigger does not fire on `update of style` (nothing is checked for
-- a style on UPDATE), so a style rename cascades without running it.
-- CFG-distilled (Lightning) variants: a request's own true_cfg_scale above its resolved variant's
-- max_true_cfg_scale is rejected (22023, column true_cfg_scale); a style's preset value is capped to it instead
-- (the style was checked against its own default variant; a client who picked another variant did not ask for
-- that CFG). An admin's UPDATE that changes variant or true_cfg_scale is checked too.
create function public.generation_jobs_prepare_request()
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
  -- maximum; a style's preset value is capped to it
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
  'franchise LoRA at insert; on UPDATE only checks the request values the statement changes and derives nothing; '
  'a true_cfg_scale above the variant''s max_true_cfg_scale is rejected, a style''s is capped.';

create trigger generation_jobs_prepare_request
  before insert or update of prompt, expanded_prompt, negative_prompt, variant, width, height, steps,
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

-- trigger functions: nobody calls them directly
revoke all on function public.generation_jobs_prepare_request(), public.generation_jobs_guard_transition()
  from public, anon, authenticated, service_role;
