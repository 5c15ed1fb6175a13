begin;
select plan(8);

select tests.create_supabase_user('alice');
select tests.authenticate_as('alice');

insert into public.generation_jobs (prompt, style, client_request_id) values ('a fox', 'anime', 'r1');
insert into public.generation_jobs (prompt, expanded_prompt, style, variant, steps, true_cfg_scale, seed,
                                    negative_prompt, client_request_id)
values ('a fox', 'a red fox in snow', 'realistic', 'base', 30, 5.5, 42, 'no text', 'r2');

-- TEST: a bare request gets the style's template, negative prompt and the variant's defaults
select is((select resolved_prompt from public.generation_jobs where client_request_id = 'r1'),
          replace((select prompt_template from public.generation_styles where id = 'anime'), '{prompt}', 'a fox'),
          'the style template wraps the prompt');
select is((select negative_prompt from public.generation_jobs where client_request_id = 'r1'),
          (select negative_prompt from public.generation_styles where id = 'anime'),
          'the style''s negative prompt is used when none is given');
select results_eq($$select variant, steps, true_cfg_scale from public.generation_jobs where client_request_id = 'r1'$$,
                  $$values ('lightning-8'::text, 8, 1.0::real)$$, 'the default variant and its steps and CFG');
select ok((select seed between 0 and 4294967295 from public.generation_jobs where client_request_id = 'r1'),
          'a seed is chosen and recorded when none is given');
select is((select width * 1000 + height from public.generation_jobs where client_request_id = 'r1'), 1025024,
          'size defaults to 1024x1024');

-- TEST: explicit values win, and the expanded prompt is what gets templated
select is((select resolved_prompt from public.generation_jobs where client_request_id = 'r2'),
          replace((select prompt_template from public.generation_styles where id = 'realistic'), '{prompt}',
                  'a red fox in snow'),
          'the expanded prompt is templated when present');
select results_eq($$select variant, steps, true_cfg_scale, seed, negative_prompt
                    from public.generation_jobs where client_request_id = 'r2'$$,
                  $$values ('base'::text, 30, 5.5::real, 42::bigint, 'no text'::text)$$,
                  'explicit variant, steps, CFG, seed and negative prompt are kept');

-- TEST: an admin retune of a style changes new jobs only
reset role;
update public.generation_styles set steps = 12 where id = 'anime';
select tests.authenticate_as('alice');
insert into public.generation_jobs (prompt, style, client_request_id) values ('a cat', 'anime', 'r3');
select results_eq($$select client_request_id, steps from public.generation_jobs
                    where client_request_id in ('r1', 'r3') order by 1$$,
                  $$values ('r1'::text, 8), ('r3'::text, 12)$$,
                  'a preset change applies to new jobs and leaves queued ones as they were');

select * from finish();
rollback;
