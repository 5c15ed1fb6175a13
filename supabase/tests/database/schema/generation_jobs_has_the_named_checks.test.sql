begin;
select plan(2);

-- TEST: every state invariant is a CHECK named as the rule it enforces
select set_eq(
  $$select conname::text from pg_constraint
    where conrelid = 'public.generation_jobs'::regclass and contype = 'c'$$,
  array['status_is_valid', 'progress_between_0_and_1', 'max_attempts_in_range', 'attempts_within_max',
        'queued_job_has_an_attempt_left', 'lease_only_while_running', 'finished_at_only_when_final', 'result_only_when_succeeded',
        'result_path_is_owner_folder', 'error_code_when_failed', 'resolved_request_is_complete',
        'lora_only_on_bf16'],
  'generation_jobs has exactly the twelve named CHECKs');

-- TEST: status_is_valid allows exactly the five contract statuses
select is(pg_get_constraintdef((select oid from pg_constraint
                                where conrelid = 'public.generation_jobs'::regclass and conname = 'status_is_valid')),
          'CHECK ((status = ANY (ARRAY[''queued''::text, ''running''::text, ''succeeded''::text, ''failed''::text, '
          '''canceled''::text])))',
          'status is queued, running, succeeded, failed or canceled');

select * from finish();
rollback;
