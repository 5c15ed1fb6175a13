begin;
select plan(5);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
update queue.quota_limits set max_active_jobs = 1 where user_id is null;

select tests.authenticate_as('alice');
insert into public.generation_jobs (prompt, client_request_id) values ('a dragon', 'req-1');

-- TEST: the same key again is a unique violation (PostgREST: 409), even with the quota full, and adds nothing
select throws_ok($$insert into public.generation_jobs (prompt, client_request_id) values ('a dragon', 'req-1')$$,
                 '23505', 'duplicate key value violates unique constraint "generation_jobs_client_request_id_key"',
                 'a repeated client_request_id conflicts (not rate_limited)');
select is((select count(*)::integer from public.generation_jobs), 1, 'still one job');

-- TEST: on conflict do nothing (supabase-js upsert with ignoreDuplicates) returns nothing and adds nothing
select is_empty($$insert into public.generation_jobs (prompt, client_request_id) values ('a dragon', 'req-1')
                  on conflict (user_id, client_request_id) where client_request_id is not null do nothing
                  returning id$$,
                'an upsert that ignores duplicates creates nothing');

-- TEST: keys are per user
select tests.authenticate_as('bob');
select lives_ok($$insert into public.generation_jobs (prompt, client_request_id) values ('bob''s', 'req-1')$$,
                'another user may use the same key');
reset role;
select is((select count(*)::integer from public.generation_jobs), 2, 'one job per (user, key)');

select * from finish();
rollback;
