begin;
select plan(7);

-- Renaming a style id cascades (on update cascade) into every job that names it. The cascade must change the
-- job's style and nothing else: a job keeps the variant and LoRA it was resolved to at insert, queued or finished,
-- even when the franchise mappings changed since (generation_jobs_prepare_request in
-- supabase/migrations/*_generation_jobs.sql).
select tests.create_supabase_user('alice');
update queue.quota_limits set max_active_jobs = 10 where user_id is null;
insert into queue.franchise_loras (franchise, lora, scale) values ('sailor senshi', 'org/sailor-lora', 0.8);

select tests.authenticate_as('alice');
insert into public.generation_jobs (prompt, style, franchise, client_request_id) values
  ('link', 'anime', 'Zelda', 'queued-unmapped'),
  ('link', 'anime', 'Zelda', 'finished-unmapped'),
  ('a heroine', 'anime', 'Sailor Senshi', 'queued-mapped');
reset role;
select tests.update_status((select id from public.generation_jobs where client_request_id = 'finished-unmapped'),
                           'running');
select tests.update_status((select id from public.generation_jobs where client_request_id = 'finished-unmapped'),
                           'succeeded');

create temporary table before_rename on commit drop as
  select j.client_request_id, to_jsonb(j) - 'style' - 'updated_at' as job from public.generation_jobs j;

-- TEST: what insert resolved
select results_eq($$select client_request_id, status, variant, lora from public.generation_jobs order by 1$$,
                  $$values ('finished-unmapped'::text, 'succeeded'::text, 'lightning-8'::text, null::text),
                           ('queued-mapped', 'queued', 'bf16', 'org/sailor-lora'),
                           ('queued-unmapped', 'queued', 'lightning-8', null)$$,
                  'at insert: Zelda has no LoRA (lightning-8), Sailor Senshi has one (bf16)');

-- the catalogue changes after the jobs were inserted: Zelda gains a LoRA, Sailor Senshi loses its own
insert into queue.franchise_loras (franchise, lora) values ('zelda', 'org/zelda-lora');
delete from queue.franchise_loras where franchise = 'sailor senshi';

-- TEST: the rename succeeds and moves every job to the new id
select lives_ok($$update public.generation_styles set id = 'anime-v2' where id = 'anime'$$,
                'an admin renames the anime style');
select is((select array_agg(distinct style) from public.generation_jobs), array['anime-v2'],
          'every job follows the renamed style');

-- TEST: variant and LoRA are kept, queued or finished
select results_eq($$select client_request_id, status, variant, lora, lora_scale from public.generation_jobs order by 1$$,
                  $$values ('finished-unmapped'::text, 'succeeded'::text, 'lightning-8'::text, null::text, null::real),
                           ('queued-mapped', 'queued', 'bf16', 'org/sailor-lora', 0.8::real),
                           ('queued-unmapped', 'queued', 'lightning-8', null, null)$$,
                  'the rename re-derives neither the variant nor the LoRA');

-- TEST: nothing but the style changes (and updated_at, which every UPDATE sets)
select is((select count(*)::integer from public.generation_jobs j
           join before_rename b using (client_request_id)
           where to_jsonb(j) - 'style' - 'updated_at' <> b.job), 0,
          'every other column of every job is as before the rename');

-- TEST: a variant rename cascades the same way (lightning-4: no style defaults to it)
update public.generation_jobs set variant = 'lightning-4' where client_request_id = 'queued-unmapped';
select lives_ok($$update public.generation_variants set id = 'lightning-4b' where id = 'lightning-4'$$,
                'an admin renames the lightning-4 variant');
select results_eq($$select client_request_id, variant, lora from public.generation_jobs order by 1$$,
                  $$values ('finished-unmapped'::text, 'lightning-8'::text, null::text),
                           ('queued-mapped', 'bf16', 'org/sailor-lora'),
                           ('queued-unmapped', 'lightning-4b', null)$$,
                  'a variant rename only renames the jobs'' variant');

select * from finish();
rollback;
