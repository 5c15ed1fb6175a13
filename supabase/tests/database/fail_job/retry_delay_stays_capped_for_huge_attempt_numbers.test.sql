-- Regression (found by this test, fixed in bebcd76): queue.retry_delay computed base * power(2, attempt - 1)
-- in double precision before the cap, so from attempt 1023 on (5 * 2^1022 > 1.8e308) it raised 22003 "value
-- out of range: overflow" instead of returning the capped delay. fail_job cannot reach it (attempts <=
-- max_attempts <= 25), but retry_delay's contract says "capped at max_seconds" for any attempt.
begin;
select plan(4);

-- TEST: a large attempt that still fits a double is capped (works today)
select lives_ok($sql$do $$ begin
                    if extract(epoch from queue.retry_delay(1000)) not between 450 and 750 then
                      raise exception 'retry_delay(1000) is not capped at 600 s ±25%%';
                    end if;
                  end $$$sql$, 'attempt 1000 is capped at 600 s ±25%');

-- TEST: larger attempt numbers are capped too, not an overflow error
select lives_ok($sql$do $$ begin
                    if extract(epoch from queue.retry_delay(1023)) not between 450 and 750 then
                      raise exception 'retry_delay(1023) is not capped at 600 s ±25%%';
                    end if;
                  end $$$sql$, 'attempt 1023 is capped at 600 s ±25%');
select lives_ok($sql$do $$ begin
                    if extract(epoch from queue.retry_delay(1100)) not between 450 and 750 then
                      raise exception 'retry_delay(1100) is not capped at 600 s ±25%%';
                    end if;
                  end $$$sql$, 'attempt 1100 is capped at 600 s ±25%');
select lives_ok($sql$do $$ begin
                    if extract(epoch from queue.retry_delay(2147483647)) not between 450 and 750 then
                      raise exception 'retry_delay(2147483647) is not capped at 600 s ±25%%';
                    end if;
                  end $$$sql$, 'the largest integer attempt is capped at 600 s ±25%');

select * from finish();
rollback;
