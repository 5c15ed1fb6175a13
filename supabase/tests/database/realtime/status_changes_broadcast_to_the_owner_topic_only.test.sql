begin;
select plan(9);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
select tests.authenticate_as('alice');
insert into public.generation_jobs (prompt, client_request_id) values ('live', 'live-1');
reset role;
select set_config('tests.job', (select id::text from public.generation_jobs where client_request_id = 'live-1'), true);

-- TEST: the client's own insert broadcast (the trigger is security definer, so RLS on messages cannot eat it)
select results_eq(
  $$select topic, event, private, payload ->> 'status' from realtime.messages$$,
  format($$values ('generation_jobs:%s'::text, 'job_update'::text, true, 'queued'::text)$$,
         tests.get_supabase_uid('alice')),
  'an insert made by the client broadcasts job_update on generation_jobs:<owner>');

-- TEST: the payload is the public projection: no lease or worker internals
select is((select payload ->> 'job_id' from realtime.messages), current_setting('tests.job'), 'payload carries job_id');
select ok(not ((select payload from realtime.messages) ?| array['locked_by', 'lease_expires_at', 'prompt', 'user_id']),
          'payload has no locked_by, lease_expires_at, prompt or user_id');

-- TEST: claim, progress and completion each broadcast; a lease renewal does not
delete from realtime.messages;
select count(*) from queue.claim_jobs('worker-a', 1, 60);
select is((select count(*)::integer from realtime.messages), 1, 'claiming broadcasts running');
select queue.renew_leases('worker-a', array[current_setting('tests.job')::uuid], array[1], 120);
select is((select count(*)::integer from realtime.messages), 1, 'a lease renewal broadcasts nothing');
select queue.report_progress('worker-a', current_setting('tests.job')::uuid, 1, 0.5);
select is((select count(*)::integer from realtime.messages where (payload ->> 'progress')::real = 0.5), 1,
          'a progress write broadcasts the progress');
select queue.complete_jobs('worker-a', jsonb_build_array(jsonb_build_object(
  'job_id', current_setting('tests.job'), 'claim', 1,
  'result_path', tests.get_supabase_uid('alice') || '/' || current_setting('tests.job') || '.png',
  'result_bytes', 1234, 'backend', 'placeholder')));
select results_eq(
  $$select payload ->> 'status', payload ->> 'result_path' is not null from realtime.messages
    order by inserted_at desc, (payload ->> 'progress')::real desc limit 1$$,
  $$values ('succeeded'::text, true)$$, 'completion broadcasts succeeded with the result path');

-- TEST: nothing went to bob's topic
select is((select count(*)::integer from realtime.messages
           where topic = 'generation_jobs:' || tests.get_supabase_uid('bob')), 0, 'bob''s topic got nothing');
select is((select count(distinct topic)::integer from realtime.messages), 1, 'every message went to one topic');

select * from finish();
rollback;
