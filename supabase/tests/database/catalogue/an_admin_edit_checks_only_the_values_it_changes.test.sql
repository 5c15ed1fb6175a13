begin;
select plan(9);

-- An admin's direct UPDATE of a job's request columns gets the insert's bounds and errors for the values it
-- changes, derives nothing, and does not look up again what it leaves unchanged (generation_jobs_prepare_request in
-- supabase/migrations/*_generation_jobs.sql).
select tests.create_supabase_user('alice');
update queue.quota_limits set max_active_jobs = 10 where user_id is null;

select tests.authenticate_as('alice');
insert into storage.objects (bucket_id, name, owner_id)
values ('generation-inputs', tests.get_supabase_uid('alice') || '/in.png', tests.get_supabase_uid('alice')::text);
insert into public.generation_jobs (prompt, style, init_image_path, client_request_id)
values ('x', 'anime', tests.get_supabase_uid('alice') || '/in.png', 'edit-job');
insert into public.generation_jobs (prompt, style, franchise, client_request_id) values ('y', 'anime', 'Zelda', 'plain');
delete from storage.objects where bucket_id = 'generation-inputs';
reset role;
insert into queue.franchise_loras (franchise, lora) values ('zelda', 'org/zelda-lora');
update public.generation_styles set enabled = false where id = 'anime';

-- TEST: a changed value is checked as at insert, naming its field
select throws_ok($$update public.generation_jobs set steps = 500 where client_request_id = 'plain'$$,
                 '22023', 'steps: must be between 1 and 100 (got 500)', 'an out-of-range steps edit is refused');
select throws_ok($$update public.generation_jobs set width = 1000 where client_request_id = 'plain'$$,
                 '22023', 'width: must be a multiple of 16 between 256 and 2048 (got 1000)',
                 'a bad width edit is refused');
select throws_ok(format($$update public.generation_jobs set init_image_path = '%s/other.png'
                          where client_request_id = 'plain'$$, tests.get_supabase_uid('alice')),
                 '22023', format('init_image_path: no object %s/other.png in bucket generation-inputs',
                                 tests.get_supabase_uid('alice')),
                 'a changed init image must exist');
select throws_ok($$update public.generation_jobs set init_image_path = null where client_request_id = 'edit-job'$$,
                 '22023', 'init_image_path: required for variant edit', 'an edit job keeps needing an init image');

-- TEST: unchanged values are not looked up again (image deleted, style disabled), and nothing is derived
select lives_ok($$update public.generation_jobs set steps = 20, seed = seed where client_request_id = 'edit-job'$$,
                'an edit of steps succeeds though the image is gone and the style disabled');
select lives_ok($$update public.generation_jobs set prompt = 'y2', franchise = 'zelda ' where client_request_id = 'plain'$$,
                'an edit of prompt and franchise succeeds');
select results_eq($$select client_request_id, variant, lora, steps from public.generation_jobs order by 1$$,
                  $$values ('edit-job'::text, 'edit'::text, null::text, 20),
                           ('plain', 'lightning-8', null, 8)$$,
                  'the edits keep the variant and LoRA resolved at insert');

-- TEST: an admin may still move a job to a disabled variant; the foreign key refuses an unknown one
select lives_ok($$update public.generation_jobs set variant = 'tiny' where client_request_id = 'plain'$$,
                'an admin sets a disabled variant');
select throws_ok($$update public.generation_jobs set variant = 'nope' where client_request_id = 'plain'$$,
                 '23503', null, 'an unknown variant is refused by the foreign key');

select * from finish();
rollback;
