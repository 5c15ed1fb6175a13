begin;
select plan(11);

-- 500 draws per attempt number: every draw must lie within base * 2^(attempt-1) * [0.75, 1.25] (base 5 s)
create temp table draws on commit drop as
select attempt, extract(epoch from queue.retry_delay(attempt)) as seconds
from generate_series(-1, 5) as attempt, generate_series(1, 500);

-- TEST: attempts 1 to 5 wait 5, 10, 20, 40, 80 s, each ±25%
select results_eq(
  $$select attempt, min(seconds) >= 5 * 2 ^ (attempt - 1) * 0.75, max(seconds) <= 5 * 2 ^ (attempt - 1) * 1.25
    from draws where attempt between 1 and 5 group by attempt order by attempt$$,
  $$values (1, true, true), (2, true, true), (3, true, true), (4, true, true), (5, true, true)$$,
  'each draw is within ±25% of 5 * 2^(attempt-1)');

-- TEST: the jitter is real: draws differ and use both halves of the band
select ok((select count(distinct seconds) > 400 from draws where attempt = 3), 'draws for one attempt differ');
select ok((select min(seconds) < 20 from draws where attempt = 3), 'some draws are below the base delay');
select ok((select max(seconds) > 20 from draws where attempt = 3), 'some draws are above the base delay');
select ok((select avg(seconds) between 19 and 21 from draws where attempt = 3), 'draws centre on the base delay');

-- TEST: attempt numbers below 1 wait like attempt 1
select ok((select min(seconds) >= 3.75 and max(seconds) <= 6.25 from draws where attempt = 0),
          'attempt 0 waits 5 s ±25%');
select ok((select min(seconds) >= 3.75 and max(seconds) <= 6.25 from draws where attempt = -1),
          'attempt -1 waits 5 s ±25%');

-- TEST: base_seconds is honoured
select ok((select min(s) >= 1.5 and max(s) <= 2.5
           from (select extract(epoch from queue.retry_delay(2, 1)) as s from generate_series(1, 200)) d),
          'base 1 s, attempt 2: 2 s ±25%');

-- TEST: the delay is an interval the caller can add to now()
select is(pg_typeof(queue.retry_delay(1))::text, 'interval', 'retry_delay returns an interval');

-- TEST: fail_job uses it with the job's attempt number: each retried job's run_after lies in its band
select tests.create_supabase_user('alice') as alice \gset
create temp table retried on commit drop as
select attempt, tests.make_running_job('alice', 'worker-a', 60, attempt) as id from generate_series(1, 3) as attempt;
update public.generation_jobs set max_attempts = 25;
select results_eq($$select queue.fail_job('worker-a', id, attempt, 'timeout', 'slow', true) from retried order by attempt$$,
                  $$values ('queued'::text), ('queued'::text), ('queued'::text)$$,
                  'retryable failures of attempts 1, 2 and 3 (of 25) are queued');
select results_eq(
  $$select attempts, extract(epoch from run_after - now()) >= 5 * 2 ^ (attempts - 1) * 0.75,
           extract(epoch from run_after - now()) <= 5 * 2 ^ (attempts - 1) * 1.25
    from public.generation_jobs order by attempts$$,
  $$values (1, true, true), (2, true, true), (3, true, true)$$,
  'run_after - now() is within the band of each attempt');

select * from finish();
rollback;
