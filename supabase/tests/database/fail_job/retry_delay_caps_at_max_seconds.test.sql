begin;
select plan(5);

-- The cap applies to base * 2^(attempt-1); the ±25% jitter is applied after it (the function's contract:
-- "base * 2^(attempt-1), capped at max_seconds, with ±25% jitter"), so a capped delay lies in
-- [0.75, 1.25] * max_seconds.

-- TEST: attempt 8 would wait 5 * 2^7 = 640 s; it is capped at the default 600 s
select ok((select min(s) >= 450 and max(s) <= 750
           from (select extract(epoch from queue.retry_delay(8)) as s from generate_series(1, 300)) d),
          'attempt 8: capped at 600 s ±25%');

-- TEST: the highest attempt a job can reach (max_attempts is at most 25) is capped too
select ok((select min(s) >= 450 and max(s) <= 750
           from (select extract(epoch from queue.retry_delay(25)) as s from generate_series(1, 300)) d),
          'attempt 25: capped at 600 s ±25%');

-- TEST: the attempt just below the cap is not capped
select ok((select min(s) >= 240 and max(s) <= 400
           from (select extract(epoch from queue.retry_delay(7)) as s from generate_series(1, 300)) d),
          'attempt 7: 320 s ±25%, below the cap');

-- TEST: a custom max_seconds caps the delay
select ok((select min(s) >= 7.5 and max(s) <= 12.5
           from (select extract(epoch from queue.retry_delay(6, 5, 10)) as s from generate_series(1, 300)) d),
          'attempt 6 with max_seconds 10: 10 s ±25%');
select ok((select max(s) <= 1.25
           from (select extract(epoch from queue.retry_delay(25, 1, 1)) as s from generate_series(1, 300)) d),
          'attempt 25 with base 1 and max_seconds 1: at most 1.25 s');

select * from finish();
rollback;
